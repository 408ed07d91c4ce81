"""Panoptic FPN R50-FPN on COCO panoptic 2017, after detectron2's `panoptic_fpn_R_50_1x`.

COCO is not downloaded for you: unpack train2017/ and val2017/ from the COCO site, and the
panoptic annotations (`panoptic_annotations_trainval2017.zip`: annotations/panoptic_*2017.json and
the PNG folders annotations/panoptic_*2017/ from the zips inside) into one folder (see
segjax/data/builders/coco_panoptic.py), and download an ImageNet ResNet-50 (torchvision's .pth):

  segjax data prepare coco_panoptic --manual_dir=~/data/coco
  segjax train --config experiments/panoptic_fpn_r50_coco.py --workdir runs/panoptic_fpn_coco \
    --config.model.backbone.pretrained=~/weights/resnet50.pth

Reported: PQ 40.2 (things 47.8, stuff 28.9) for R-50-FPN 1x in mmdetection's model zoo (batch
16, 90k iterations; detectron2's recipe with the semantic loss weighted 0.5). Differences here are
those of `mask_rcnn_r50_fpn_coco` (static input shapes, a cosine schedule) and a semantic head
over all 133 classes where detectron2's predicts the 53 stuff classes and one "thing" class; not
yet reproduced with segjax. Predictions export to COCO's panoptic format with the data set's
category ids, for the official panopticapi.
"""

from segjax.config import base_config, detectron2_coco_1x

VARIANTS = ("",)  # the arguments get_config takes


def get_config(arg: str = ""):
  if arg:
    raise ValueError(f"Unknown variant {arg!r} of panoptic_fpn_r50_coco: use ''.")
  c = base_config()
  c.task = "panoptic"
  c.data.name = "coco_panoptic"
  c.model.name = "panoptic_fpn"
  detectron2_coco_1x(c)
  c.panoptic.semantic_weight = 0.5
  c.panoptic.stuff_area = 4096
  c.eval.metric = "pq"
  return c

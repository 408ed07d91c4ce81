"""Mask R-CNN R50-FPN on COCO 2017, after detectron2's `mask_rcnn_R_50_FPN_1x` (the 1x schedule).

COCO is not downloaded for you: unpack train2017/, val2017/ and annotations/ from the COCO site
into one folder (see segjax/data/builders/coco.py), and download an ImageNet ResNet-50 (e.g.
torchvision's resnet50 .pth):

  segjax data prepare coco --manual_dir=~/data/coco
  segjax train --config experiments/mask_rcnn_r50_fpn_coco.py --workdir runs/maskrcnn_coco \
    --config.model.backbone.pretrained=~/weights/resnet50.pth

Reported: 35.2 mask AP (38.6 box AP) for R50-FPN 1x, detectron2's model zoo: 90k iterations at
batch 16, SGD lr 0.02 with steps at 60k and 80k, frozen batch norm, shorter side 640-800 px.
Differences here: training crops are 800x1216 and evaluation fits each image inside 800x1344,
padded (static shapes; detectron2 keeps the aspect ratio up to 1333 px), a cosine schedule stands
in for the steps, the RoIAlign of the mask targets samples 2x2 points a bin (detectron2 adapts),
and NMS before detection keeps the best 1,400 class-box candidates. Not reproduced here (no
GPU, no COCO).
"""

from segjax.config import base_config, detectron2_coco_1x

VARIANTS = ("",)  # the arguments get_config takes


def get_config(arg: str = ""):
  if arg:
    raise ValueError(f"Unknown variant {arg!r} of mask_rcnn_r50_fpn_coco: use ''.")
  c = base_config()
  c.task = "instance"
  c.data.name = "coco"
  c.model.name = "mask_rcnn"
  detectron2_coco_1x(c)
  c.eval.metric = "mask_ap"
  return c

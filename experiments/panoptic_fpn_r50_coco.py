"""Panoptic FPN R50-FPN on COCO panoptic 2017, after detectron2's `panoptic_fpn_R_50_1x`.

COCO is not downloaded for you: unpack train2017/ and val2017/ from the COCO site, and the
panoptic annotations (`panoptic_annotations_trainval2017.zip`: annotations/panoptic_*2017.json and
the PNG folders annotations/panoptic_*2017/ from the zips inside) into one folder (see
segjax/data/builders/coco_panoptic.py), and download an ImageNet ResNet-50 (torchvision's .pth):

  segjax train --config experiments/panoptic_fpn_r50_coco.py --workdir runs/panoptic_fpn_coco \
    --config.data.root=~/data/coco --config.model.backbone.pretrained=~/weights/resnet50.pth

Reported: PQ 40.2 (things 47.8, stuff 28.9) for R-50-FPN 1x in mmdetection's model zoo (batch
16, 90k iterations; detectron2's recipe with the semantic loss weighted 0.5). Differences here are
those of `mask_rcnn_r50_fpn_coco` (fixed 800x1216 inputs, a cosine schedule) and a semantic head
over all 133 classes where detectron2's predicts the 53 stuff classes and one "thing" class; not
yet reproduced with segjax. Predictions export to COCO's panoptic format with the data set's
category ids, for the official panopticapi.
"""

from segjax.config import base_config

VARIANTS = ("",)  # the arguments get_config takes


def get_config(arg: str = ""):
  if arg:
    raise ValueError(f"Unknown variant {arg!r} of panoptic_fpn_r50_coco: use ''.")
  c = base_config()
  c.task = "panoptic"
  c.data.name = "coco_panoptic"
  c.data.root = ""  # the COCO 2017 folder
  c.data.image_size = (800, 1216)
  c.data.scale_range = (0.8, 1.0)  # shorter side 640-800, as detectron2's multi-scale training
  c.data.batch_size = 16
  c.data.max_instances = 100
  c.data.num_threads = 16
  c.model.name = "panoptic_fpn"
  c.model.backbone.name = "resnet50"
  c.model.dtype = "bfloat16"
  c.model.kwargs = {"norm": "frozen_batch"}
  c.loss.terms = {"ce": {"weight": 1.0}}  # unused: the panoptic task has its own losses
  c.panoptic.semantic_weight = 0.5
  c.panoptic.stuff_area = 4096
  c.optimizer.name = "sgd"
  c.optimizer.learning_rate = 0.02
  c.optimizer.weight_decay = 1e-4
  c.optimizer.grad_clip_norm = 0.0
  c.schedule.name = "cosine"
  c.schedule.warmup_steps = 1000
  c.schedule.end_factor = 0.01
  c.train.steps = 90_000
  c.train.log_every = 20
  c.train.eval_every = c.train.checkpoint_every = 10_000
  c.eval.image_size = (800, 1216)
  c.eval.metric = "pq"
  c.eval.batch_size = 8
  return c

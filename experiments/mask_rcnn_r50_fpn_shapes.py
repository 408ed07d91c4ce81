"""Mask R-CNN, ResNet-50-FPN, on the instances of the built-in `shapes` street scenes.

  segjax train --config experiments/mask_rcnn_r50_fpn_shapes.py --workdir runs/maskrcnn

Things are car, person and sign; their instances come from the panoptic labels. Scaled for two CPU
cores: 128x128 scenes, anchors 8-128 pixels (the objects are small), fewer proposals and RoIs,
narrower heads, batch norm trained and AdamW (no ImageNet weights here). Variants: `:tiny` (a
ResNet-18 eight channels wide on 64x64 crops, seconds, for tests). Expected result: README.
"""

from segjax.config import base_config, mask_rcnn_small_scenes, mask_rcnn_tiny

VARIANTS = ("", "tiny")  # the arguments get_config takes


def get_config(arg: str = ""):
  c = base_config()
  c.task = "instance"
  c.model.name = "mask_rcnn"
  mask_rcnn_small_scenes(c)
  c.eval.metric = "mask_ap"
  if arg == "tiny":
    mask_rcnn_tiny(c)
  elif arg:
    raise ValueError(f"Unknown variant {arg!r} of mask_rcnn_r50_fpn_shapes: use '' or 'tiny'.")
  return c

"""Panoptic FPN (Mask R-CNN R18-FPN plus a semantic FPN head) on the built-in `shapes` scenes.

  segjax train --config experiments/panoptic_fpn_shapes.py --workdir runs/panoptic_fpn

The Mask R-CNN of `mask_rcnn_r50_fpn_shapes` (`segjax.config.mask_rcnn_small_scenes`: small
anchors, fewer proposals, narrower heads, batch norm trained, AdamW) on a ResNet-18, to train in
minutes on CPU, with detectron2's semantic head on P2-P5 and its loss weight 0.5; the merge keeps
stuff of at least 32 px at this scale. Variants: `:tiny` (a ResNet-18 eight channels wide on 64x64
crops, seconds, for tests). Expected result: README, model zoo.
"""

from segjax.config import base_config, mask_rcnn_small_scenes, mask_rcnn_tiny

VARIANTS = ("", "tiny")  # the arguments get_config takes


def get_config(arg: str = ""):
  c = base_config()
  c.task = "panoptic"
  c.model.name = "panoptic_fpn"
  mask_rcnn_small_scenes(c)
  c.model.backbone.name = "resnet18"
  c.model.kwargs.semantic_features = 64
  c.panoptic.semantic_weight = 0.5
  c.panoptic.stuff_area = 32
  c.eval.metric = "pq"
  if arg == "tiny":
    mask_rcnn_tiny(c)
    c.model.kwargs.semantic_features = 16
  elif arg:
    raise ValueError(f"Unknown variant {arg!r} of panoptic_fpn_shapes: use '' or 'tiny'.")
  return c

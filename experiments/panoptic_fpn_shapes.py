"""Panoptic FPN (Mask R-CNN R18-FPN plus a semantic FPN head) on the built-in `shapes` scenes.

  segjax train --config experiments/panoptic_fpn_shapes.py --workdir runs/panoptic_fpn

The Mask R-CNN of `mask_rcnn_r50_fpn_shapes` (small anchors, fewer proposals, narrower heads,
batch norm trained, AdamW) on a ResNet-18, to train in minutes on CPU, with detectron2's semantic
head on P2-P5 and its loss weight 0.5; the merge keeps stuff of at least 32 px at this scale. Variants: `:tiny` (a ResNet-18 eight channels
wide on 64x64 crops, seconds, for tests). Expected result: README, model zoo.
"""

from segjax.config import base_config, tiny

VARIANTS = ("", "tiny")  # the arguments get_config takes


def get_config(arg: str = ""):
  c = base_config()
  c.task = "panoptic"
  c.model.name = "panoptic_fpn"
  c.model.backbone.name = "resnet18"
  c.model.kwargs = {
    "norm": "batch",
    "fpn_features": 128,
    "anchor_sizes": (8, 16, 32, 64, 128),
    "rpn_pre_nms_topk_train": 1000,
    "rpn_post_nms_topk_train": 300,
    "rpn_pre_nms_topk_test": 500,
    "rpn_post_nms_topk_test": 300,
    "roi_batch_size": 128,
    "box_head_hidden": 256,
    "mask_head_features": 128,
    "semantic_features": 64,
  }
  c.data.variant = "128"
  c.data.image_size = (128, 128)
  c.data.scale_range = (0.8, 1.25)
  c.data.batch_size = 4
  c.data.max_instances = 16
  c.loss.terms = {"ce": {"weight": 1.0}}  # unused: the panoptic task has its own losses
  c.panoptic.semantic_weight = 0.5
  c.panoptic.stuff_area = 32
  c.optimizer.name = "adamw"
  c.optimizer.learning_rate = 1e-3
  c.optimizer.weight_decay = 1e-4
  c.optimizer.grad_clip_norm = 1.0
  c.schedule.name = "cosine"
  c.schedule.warmup_steps = 100
  c.train.steps = 600
  c.train.eval_every = c.train.checkpoint_every = 300
  c.eval.metric = "pq"
  c.eval.batch_size = 8
  if arg == "tiny":
    tiny(c)
    c.model.name = "panoptic_fpn"
    c.model.backbone.name = "resnet18"
    c.model.kwargs = {
      "norm": "batch",
      "backbone_width": 8,
      "fpn_features": 16,
      "anchor_sizes": (8, 16, 32, 64, 128),
      "rpn_pre_nms_topk_train": 200,
      "rpn_post_nms_topk_train": 64,
      "rpn_pre_nms_topk_test": 200,
      "rpn_post_nms_topk_test": 64,
      "rpn_batch_size": 64,
      "roi_batch_size": 32,
      "box_head_hidden": 32,
      "mask_head_features": 16,
      "detections": 20,
      "semantic_features": 16,
    }
    c.data.image_size = (64, 64)
    c.data.max_instances = 8
  elif arg:
    raise ValueError(f"Unknown variant {arg!r} of panoptic_fpn_shapes: use '' or 'tiny'.")
  return c

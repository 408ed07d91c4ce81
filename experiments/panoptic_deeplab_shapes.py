"""Panoptic-DeepLab with a ResNet-18 (output stride 16) on the built-in `shapes` street scenes.

  segjax train --config experiments/panoptic_deeplab_shapes.py --workdir runs/panoptic_deeplab

Stuff is sky, road, building and pole; things are car, person and sign. The paper's heads and
losses (hard-pixel CE on the top 20%, centre MSE x200, offset L1 x0.01) at CPU scale: 128x128
scenes, a ResNet-18 (a ResNet-50 trains at 0.34 steps/s here, the ResNet-18 at 0.85), narrower
decoders, batch norm over the global batch, AdamW. The centre Gaussians and the
area limits are scaled to the small images (sigma 4 px, stuff under 32 px and instances under
256 px). Variants: `:tiny` (a ResNet-18 eight channels wide on 64x64 crops, seconds, for tests).
Expected result: README, model zoo.
"""

from segjax.config import base_config, tiny

VARIANTS = ("", "tiny")  # the arguments get_config takes


def get_config(arg: str = ""):
  c = base_config()
  c.task = "panoptic"
  c.model.name = "panoptic_deeplab"
  c.model.backbone.name = "resnet18"
  c.model.kwargs = {
    "aspp_features": 128,
    "semantic_features": 128,
    "instance_features": 64,
    "head_features": (128, 32),
  }
  c.data.variant = "128"
  c.data.image_size = (128, 128)
  c.data.scale_range = (0.8, 1.25)
  c.data.batch_size = 8
  c.loss.terms = {"ce": {"weight": 1.0}}  # unused: the panoptic task has its own losses
  c.panoptic.sigma = 4.0
  c.panoptic.nms_kernel = 5
  c.panoptic.stuff_area = 32
  c.panoptic.small_instance_area = 256
  c.optimizer.name = "adamw"
  c.optimizer.learning_rate = 1e-3
  c.schedule.name = "poly"
  c.schedule.warmup_steps = 50
  c.train.steps = 1000
  c.train.eval_every = c.train.checkpoint_every = 500
  c.eval.metric = "pq"
  c.eval.batch_size = 8
  if arg == "tiny":
    tiny(c)
    c.model.name = "panoptic_deeplab"
    c.model.backbone.name = "resnet18"
    c.model.kwargs = {
      "backbone_width": 8,
      "aspp_features": 16,
      "semantic_features": 16,
      "instance_features": 8,
      "head_features": (16, 8),
    }
    c.data.image_size = (64, 64)
  elif arg:
    raise ValueError(f"Unknown variant {arg!r} of panoptic_deeplab_shapes: use '' or 'tiny'.")
  return c

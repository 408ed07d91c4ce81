"""DeepLabv3+ with a ResNet-50 (output stride 16) on the built-in `shapes` street scenes.

  segjax train --config experiments/deeplabv3plus_r50_shapes.py --workdir runs/deeplab
  # from ImageNet weights the user downloaded (torchvision's resnet50 .pth):
  segjax train --config experiments/deeplabv3plus_r50_shapes.py --workdir runs/deeplab_in1k \
    --config.model.backbone.pretrained=~/weights/resnet50-11ad3fa6.pth

The paper recipe (poly schedule, SGD with momentum, batch norm over the global batch) on 64x64
crops of `shapes/64`, so that it runs on two CPU cores in minutes. Variants: `:tiny` (a ResNet-18
eight channels wide, a few seconds, for tests). Expected result: README, model zoo.
"""

from segjax.config import base_config, deeplab_r50_d8, tiny

VARIANTS = ("", "tiny")  # the arguments get_config takes


def get_config(arg: str = ""):
  c = deeplab_r50_d8(base_config())
  # At CPU scale: output stride 16, float32, the plain stem of torchvision's ImageNet weights,
  # and the lighter weight decay of a short run.
  c.model.backbone.output_stride = 16
  c.model.backbone.deep_stem = False
  c.model.dtype = "float32"
  c.optimizer.weight_decay = 1e-4
  c.data.variant = "64"
  c.data.image_size = (64, 64)
  c.data.scale_range = (0.5, 2.0)
  c.data.batch_size = 8
  c.train.steps = 600
  c.train.eval_every = c.train.checkpoint_every = 200
  if arg == "tiny":
    tiny(c)
    c.model.name = "deeplabv3plus"
    c.model.backbone.name = "resnet18"
    c.model.kwargs = {
      "backbone_width": 8,
      "aspp_features": 16,
      "low_level_features": 8,
      "decoder_features": 16,
    }
  elif arg:
    raise ValueError(f"Unknown variant {arg!r} of deeplabv3plus_r50_shapes: use '' or 'tiny'.")
  return c

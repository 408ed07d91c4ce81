"""U-Net on the built-in `shapes` street scenes (semantic segmentation).

  segjax train --config experiments/unet_shapes.py --workdir runs/unet

Variants: `:tiny` (a few seconds on CPU, for tests), `:small` (a quick look).
Expected result: see README (mIoU on `shapes` validation, steps, wall time on 2 CPU cores).
"""

from segjax.config import base_config, tiny

VARIANTS = ("", "small", "tiny")  # the arguments get_config takes


def get_config(arg: str = ""):
  c = base_config()
  c.model.name = "unet"
  # Narrower than the 7.7 M-parameter default so that the demo trains in minutes on 2 CPU cores.
  c.model.kwargs = {"widths": (16, 32, 64)}
  c.data.variant = "128"
  c.data.image_size = (128, 128)
  # 1000 steps of batch 8 fit in 10 minutes on 2 CPU cores (mIoU: README, "Two commands").
  c.train.steps = 1000
  c.train.eval_every = c.train.checkpoint_every = 250
  if arg == "small":
    c.train.steps = 300
  elif arg == "tiny":
    tiny(c)
  elif arg:
    raise ValueError(f"Unknown variant {arg!r} of unet_shapes: use '', 'small' or 'tiny'.")
  return c

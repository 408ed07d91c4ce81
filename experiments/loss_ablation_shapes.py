"""Loss ablation on `shapes`: one small U-Net trained with each loss, same data, seed and budget.

  segjax sweep --config experiments/loss_ablation_shapes.py --workdir runs/ablation [--seeds 3]

Variants (`sweep()`): plain, inverse- and median-frequency-weighted cross-entropy; Dice, Dice +
CE, focal, focal + Dice, boundary-weighted CE, CE + ramped distance-map boundary loss, Lovász,
Tversky. Only `loss.*` differs between them. `:tiny` trains each variant for 4 steps (tests).

Expected result (seed 0, README "Loss ablation" has the whole table): final validation mIoU from
0.444 (ce_median) to 0.527 (lovasz, the best, and the only one with pole and sign IoU well above 0
besides the class-weighted CEs); dice_ce 0.500, ce 0.469. The grid of 11 runs took 13 min 27 s on
2 CPU cores (52-122 s a variant, Lovász the slowest).
"""

from segjax.config import base_config, tiny

STEPS = 400


VARIANTS = ("", "tiny")  # the arguments get_config takes


def get_config(arg: str = ""):
  c = base_config()
  c.model.name = "unet_small"
  c.data.variant = "64"
  c.data.image_size = (64, 64)
  c.data.batch_size = 8
  c.train.steps = STEPS
  c.train.log_every = 25
  c.train.eval_every = c.train.checkpoint_every = STEPS // 2
  c.schedule.warmup_steps = 40
  if arg == "tiny":
    tiny(c)
  elif arg:
    raise ValueError(f"Unknown variant {arg!r} of loss_ablation_shapes: use '' or 'tiny'.")
  return c


def sweep() -> list[dict]:
  """The variants: `{"name": ..., **flattened config overrides}`; only loss keys differ."""
  ce = {"weight": 1.0}
  return [
    {"name": "ce", "loss.terms": {"ce": ce}},
    {"name": "ce_inverse", "loss.terms": {"ce": ce}, "loss.class_weights": "inverse"},
    {"name": "ce_median", "loss.terms": {"ce": ce}, "loss.class_weights": "median"},
    {"name": "dice", "loss.terms": {"dice": {"weight": 1.0}}},
    {"name": "dice_ce", "loss.terms": {"ce": ce, "dice": {"weight": 1.0}}},
    {"name": "focal", "loss.terms": {"focal": {"weight": 1.0, "gamma": 2.0}}},
    {
      "name": "focal_dice",
      "loss.terms": {"focal": {"weight": 1.0, "gamma": 2.0}, "dice": {"weight": 1.0}},
    },
    # A 2-pixel band at 64x64 (the default 3 is meant for larger images).
    {"name": "boundary_ce", "loss.terms": {"boundary_ce": {"weight": 1.0, "width": 2}}},
    {
      "name": "ce_boundary",
      # Kervadec et al.: a region loss first, the boundary term's weight ramped up from 0 (over
      # steps 0-200, whatever --config.train.steps says: the ramp is in steps).
      "loss.terms": {"ce": ce, "boundary": {"weight": 1.0, "ramp_steps": (0, STEPS // 2)}},
    },
    {"name": "lovasz", "loss.terms": {"lovasz": {"weight": 1.0}}},
    {"name": "tversky", "loss.terms": {"tversky": {"weight": 1.0, "alpha": 0.3, "beta": 0.7}}},
  ]

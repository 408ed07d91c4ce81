"""U-Net on Pascal VOC 2012 + SBD ("VOC aug": 10,582 training images, 21 classes, void 255).

Download `VOCtrainval_11-May-2012.tar` (the VOC 2012 site) and SBD's `benchmark.tgz` (the
Semantic Boundaries Dataset page), unpack both into one folder (VOCdevkit/ and
benchmark_RELEASE/ side by side), prepare it once, then train:

  segjax data prepare voc_aug --manual_dir=~/data/voc
  segjax train --config experiments/unet_voc.py --workdir runs/unet_voc

Reported: no model zoo we know of publishes a plain U-Net trained from scratch on VOC aug; the
recipe shares `deeplabv3plus_r50_voc`'s data, crops, schedule and evaluation so the two compare
directly (DeepLabv3+ R-50-D8 with ImageNet weights: 75.93 mIoU, mmsegmentation). The U-Net is
the original five-stage one (64-1024 channels) with batch norm, trained with Dice + CE from random
weights. Evaluation keeps each image's aspect ratio (longer side 512, padding void). Not yet
reproduced with segjax.
"""

from segjax.config import base_config

VARIANTS = ("",)  # the arguments get_config takes


def get_config(arg: str = ""):
  if arg:
    raise ValueError(f"Unknown variant {arg!r} of unet_voc: use ''.")
  c = base_config()
  c.data.name = "voc_aug"
  c.data.image_size = (512, 512)
  c.data.scale_range = (0.5, 2.0)  # of the size that covers the crop, as mmsegmentation's ratio
  c.data.batch_size = 16
  c.data.num_threads = 8
  c.model.name = "unet"
  c.model.kwargs = {"widths": (64, 128, 256, 512)}
  c.model.dtype = "bfloat16"
  c.loss.terms = {"ce": {"weight": 1.0}, "dice": {"weight": 1.0}}  # dice for the rare classes
  c.optimizer.learning_rate = 1e-3
  c.optimizer.weight_decay = 1e-4
  c.schedule.warmup_steps = 1000
  c.train.steps = 40_000
  c.train.eval_every = c.train.checkpoint_every = 4_000
  c.eval.image_size = (512, 512)
  c.eval.resize = "pad"
  return c

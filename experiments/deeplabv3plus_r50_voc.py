"""DeepLabv3+ R-50-D8 on Pascal VOC 2012 + SBD ("VOC aug", 10,582 training images), after
mmsegmentation's `deeplabv3plus_r50-d8_512x512_20k_voc12aug`.

Download `VOCtrainval_11-May-2012.tar` (the VOC 2012 site) and SBD's `benchmark.tgz` (the
Semantic Boundaries Dataset page), unpack both into one folder (VOCdevkit/ and benchmark_RELEASE/
side by side), prepare it once, then train:

  segjax data prepare voc_aug --manual_dir=~/data/voc
  segjax train --config experiments/deeplabv3plus_r50_voc.py --workdir runs/dlv3p_voc \
    --config.model.backbone.pretrained=~/weights/resnet50_v1c.pth

The `voc_aug` data set reads SBD's .mat masks itself (segjax/data/builders/voc.py): no
conversion to PNG is needed. Reported: 75.93 mIoU single-scale, 77.50 multi-scale + flip after 20k
iterations at batch 16; 76.81 / 77.57 after 40k (mmsegmentation model zoo). mmsegmentation
evaluates each image with its shorter side at 512 (longer up to 2048); here each image keeps its
aspect ratio inside 512x512 and is padded with void, for static shapes: expect a small gap.
Variants: `:40k`.
"""

from segjax.config import base_config, deeplab_r50_d8

VARIANTS = ("", "40k")  # the arguments get_config takes


def get_config(arg: str = ""):
  c = deeplab_r50_d8(base_config())
  c.data.name = "voc_aug"
  c.data.image_size = (512, 512)
  c.data.scale_range = (0.5, 2.0)  # of the size that covers the crop, as mmsegmentation's ratio
  c.data.batch_size = 16
  c.data.num_threads = 8
  c.train.steps = 20_000
  c.train.eval_every = c.train.checkpoint_every = 2_000
  c.eval.image_size = (512, 512)
  c.eval.resize = "pad"
  if arg == "40k":
    c.train.steps = 40_000
    c.train.eval_every = c.train.checkpoint_every = 4_000
  elif arg:
    raise ValueError(f"Unknown variant {arg!r} of deeplabv3plus_r50_voc: use '' or '40k'.")
  return c

"""DeepLabv3+ R-50-D8 on Cityscapes, after mmsegmentation's `deeplabv3plus_r50-d8_769x769_80k`.

Register at the Cityscapes site, download `leftImg8bit_trainvaltest.zip` and
`gtFine_trainvaltest.zip`, unpack both into one folder (it then holds leftImg8bit/ and gtFine/),
prepare it once (the label ids become the 19 train ids, segjax/data/builders/cityscapes.py), then
train:

  segjax data prepare cityscapes --manual_dir=~/data/cityscapes
  segjax train --config experiments/deeplabv3plus_r50_cityscapes.py --workdir runs/dlv3p_cs \
    --config.model.backbone.pretrained=~/weights/resnet50_v1c.pth

(`--config.data.root=~/data/cityscapes` reads the unpacked files directly instead.)

Reported: 79.83 mIoU single-scale, 81.48 multi-scale + flip (mmsegmentation model zoo, 8 images a
batch, 80k iterations, ImageNet ResNet-50-V1c). Differences here: plain 3x3 convolutions where
mmsegmentation's head uses depthwise-separable ones, and no auxiliary FCN head.
Variants: `:os16` (output stride 16 and 90k iterations, the DeepLabv3+ paper's training setting).
"""

from segjax.config import base_config, deeplab_r50_d8

VARIANTS = ("", "os16")  # the arguments get_config takes


def get_config(arg: str = ""):
  c = deeplab_r50_d8(base_config())
  c.data.name = "cityscapes"
  c.data.image_size = (769, 769)
  # mmsegmentation rescales the 2048x1024 images by 0.5-2.0; here scale 1 is the size that just
  # covers the 769 crop (0.751 of the full image), so 0.5-2.0 of full size is 0.666-2.663.
  c.data.scale_range = (0.666, 2.663)
  c.data.batch_size = 8
  c.data.num_threads = 8
  c.train.steps = 80_000
  c.train.log_every = 50
  c.train.eval_every = c.train.checkpoint_every = 8_000
  c.eval.batch_size = 8
  c.eval.image_size = (1024, 2048)  # full resolution
  c.eval.mode = "slide"
  c.eval.window = (769, 769)
  c.eval.stride = (513, 513)
  if arg == "os16":
    c.model.backbone.output_stride = 16
    c.train.steps = 90_000
    c.train.eval_every = c.train.checkpoint_every = 9_000
  elif arg:
    raise ValueError(f"Unknown variant {arg!r} of deeplabv3plus_r50_cityscapes: use '' or 'os16'.")
  return c

"""U-Net on Cityscapes (fine, 19 train ids), after PaddleSeg's `unet_cityscapes_1024x512_160k`.

Register at the Cityscapes site, download `leftImg8bit_trainvaltest.zip` and
`gtFine_trainvaltest.zip`, unpack both into one folder, prepare it once, then train:

  segjax data prepare cityscapes --manual_dir=~/data/cityscapes
  segjax train --config experiments/unet_cityscapes.py --workdir runs/unet_cs

Reported: 65.00 mIoU single-scale, 66.89 multi-scale + flip (PaddleSeg's U-Net model zoo,
configs/unet: 1024x512 crops, batch 4, 160k iterations, SGD with the poly schedule, from random
weights). Its U-Net is the original five-stage one (64-1024 channels, four poolings), as here
(`widths=(64, 128, 256, 512)`, bottleneck 1024, batch norm). Evaluation is on the full 1024x2048
images in one pass. Not yet reproduced with segjax.
"""

from segjax.config import base_config

VARIANTS = ("",)  # the arguments get_config takes


def get_config(arg: str = ""):
  if arg:
    raise ValueError(f"Unknown variant {arg!r} of unet_cityscapes: use ''.")
  c = base_config()
  c.data.name = "cityscapes"
  c.data.image_size = (512, 1024)
  # PaddleSeg rescales the 2048x1024 images by 0.5-2.0 before the crop; scale 1 here is the size
  # that just covers the crop (half the full size), so 0.5-2.0 of full size is 1.0-4.0.
  c.data.scale_range = (1.0, 4.0)
  c.data.batch_size = 4
  c.data.num_threads = 8
  c.model.name = "unet"
  c.model.kwargs = {"widths": (64, 128, 256, 512)}
  c.model.dtype = "bfloat16"
  c.loss.terms = {"ce": {"weight": 1.0}}
  c.optimizer.name = "sgd"
  c.optimizer.learning_rate = 0.01
  c.optimizer.weight_decay = 4e-5
  c.optimizer.grad_clip_norm = 0.0
  c.schedule.name = "poly"
  c.schedule.warmup_steps = 0
  c.train.steps = 160_000
  c.train.eval_every = c.train.checkpoint_every = 16_000
  c.eval.batch_size = 4
  c.eval.image_size = (1024, 2048)  # full resolution
  return c

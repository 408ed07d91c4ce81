"""Panoptic-DeepLab R50 on Cityscapes panoptic, after detectron2's
`panoptic_deeplab_R_52_os16_mg124_poly_90k_bs32_crop_512_1024`.

Register at the Cityscapes site, download `leftImg8bit_trainvaltest.zip` and
`gtFine_trainvaltest.zip`, unpack both into one folder, prepare it once, then train:

  segjax data prepare cityscapes --manual_dir=~/data/cityscapes
  segjax train --config experiments/panoptic_deeplab_r50_cityscapes.py --workdir runs/pdl_cs \
    --config.model.backbone.pretrained=~/weights/resnet50_v1c.pth

The `cityscapes` data set makes the panoptic labels from gtFine's instance-id images itself (the
8 classes person..bicycle are things, crowds have no instance): no `csCreatePanopticImgs`.

Reported: PQ 58.6 (SQ 80.9, RQ 71.2; mIoU 75.9) for R50-DC5 at 1024x2048 and 60.3 for R52-DC5
(detectron2's Panoptic-DeepLab project, 90k iterations at batch 32, Adam lr 0.001 with the poly
schedule, 512x1024 crops). Differences here: a ResNet-50-V1c stem (32-32-64 channels) where R52's
is 64-64-128, no multi-grid (1, 2, 4) in the last stage; not yet reproduced with segjax.
"""

from segjax.config import base_config

VARIANTS = ("",)  # the arguments get_config takes


def get_config(arg: str = ""):
  if arg:
    raise ValueError(f"Unknown variant {arg!r} of panoptic_deeplab_r50_cityscapes: use ''.")
  c = base_config()
  c.task = "panoptic"
  c.data.name = "cityscapes"
  c.data.image_size = (512, 1024)
  # detectron2 rescales the 1024x2048 images by 0.5-2.0 before the crop; scale 1 here is the
  # size that just covers the crop (half the full size).
  c.data.scale_range = (1.0, 4.0)
  c.data.batch_size = 32
  c.data.num_threads = 16
  c.model.name = "panoptic_deeplab"
  c.model.backbone.name = "resnet50"
  c.model.backbone.deep_stem = True
  c.model.backbone.output_stride = 16
  c.model.dtype = "bfloat16"
  c.loss.terms = {"ce": {"weight": 1.0}}  # unused: the panoptic task has its own losses
  c.optimizer.name = "adamw"
  c.optimizer.learning_rate = 1e-3
  c.optimizer.weight_decay = 0.0
  c.optimizer.grad_clip_norm = 0.0
  c.schedule.name = "poly"
  c.schedule.warmup_steps = 0
  c.train.steps = 90_000
  c.train.eval_every = c.train.checkpoint_every = 10_000
  c.eval.image_size = (1024, 2048)  # full resolution
  c.eval.batch_size = 8
  c.eval.metric = "pq"
  return c

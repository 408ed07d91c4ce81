"""DeepLabv3+ R-50-D8 on ADE20K (SceneParse150), after mmsegmentation's
`deeplabv3plus_r50-d8_512x512_80k_ade20k`.

Download `ADEChallengeData2016.zip` from the MIT Scene Parsing benchmark, unpack it, prepare it
once, then train:

  segjax data prepare ade20k --manual_dir=~/data/ade
  segjax train --config experiments/deeplabv3plus_r50_ade20k.py --workdir runs/dlv3p_ade \
    --config.model.backbone.pretrained=~/weights/resnet50_v1c.pth

Labels follow the field's convention: annotation 0 ("other") is void, 1..150 become classes
0..149. Reported: 42.72 mIoU single-scale, 43.75 multi-scale + flip (mmsegmentation model zoo, 16
images a batch, 80k iterations, ImageNet ResNet-50-V1c). mmsegmentation evaluates each image with
its shorter side at 512 (longer up to 2048); here each image keeps its aspect ratio inside 704x704
(a 4:3 image becomes 704x528) and is padded with void, for static shapes; no auxiliary head.
Not yet reproduced with segjax.
"""

from segjax.config import base_config, deeplab_r50_d8

VARIANTS = ("", "160k")  # the arguments get_config takes


def get_config(arg: str = ""):
  c = deeplab_r50_d8(base_config())
  c.data.name = "ade20k"
  c.data.image_size = (512, 512)
  # mmsegmentation scales images to 2048x512 (keeping the ratio) times 0.5-2.0 before the crop;
  # for the typical 4:3 image that is 0.5-2.0 of the size that covers the 512 crop.
  c.data.scale_range = (0.5, 2.0)
  c.data.batch_size = 16
  c.data.num_threads = 8
  c.train.steps = 80_000
  c.train.eval_every = c.train.checkpoint_every = 8_000
  c.eval.batch_size = 8
  c.eval.image_size = (704, 704)
  c.eval.resize = "pad"
  if arg == "160k":  # reported: 43.95 / 44.93
    c.train.steps = 160_000
    c.train.eval_every = c.train.checkpoint_every = 16_000
  elif arg:
    raise ValueError(f"Unknown variant {arg!r} of deeplabv3plus_r50_ade20k: use '' or '160k'.")
  return c

"""DeepLabv3+ R-50-D8 on Pascal VOC 2012 + SBD ("VOC aug", 10,582 training images), after
mmsegmentation's `deeplabv3plus_r50-d8_512x512_20k_voc12aug`.

VOC is not downloaded for you: take VOC2012 and the SBD augmented masks, convert SBD's .mat
masks to PNG (class ids 0-20, void 255), and lay them out as a `folder` data set:

    voc/classes.json        ["background", "aeroplane", ..., "tvmonitor"]
    voc/train/images/*.jpg  the train_aug list;   voc/train/masks/*.png
    voc/validation/...      the 1,449 val images

  segjax train --config experiments/deeplabv3plus_r50_voc.py --workdir runs/dlv3p_voc \
    --config.data.root=~/data/voc --config.model.backbone.pretrained=~/weights/resnet50_v1c.pth

Reported: 75.93 mIoU single-scale, 77.50 multi-scale + flip after 20k iterations at batch 16;
76.81 / 77.57 after 40k (mmsegmentation model zoo). Evaluation here resizes each image to 512x512
(static shapes), where mmsegmentation keeps the aspect ratio; expect a small gap.
Variants: `:40k`.
"""

from segjax.config import base_config, deeplab_r50_d8

VARIANTS = ("", "40k")  # the arguments get_config takes


def get_config(arg: str = ""):
  c = deeplab_r50_d8(base_config())
  c.data.name = "folder"
  c.data.root = ""  # the prepared VOC aug folder
  c.data.image_size = (512, 512)
  c.data.scale_range = (0.5, 2.0)  # of the size that covers the crop, as mmsegmentation's ratio
  c.data.batch_size = 16
  c.data.num_threads = 8
  c.train.steps = 20_000
  c.train.eval_every = c.train.checkpoint_every = 2_000
  c.eval.image_size = (512, 512)
  if arg == "40k":
    c.train.steps = 40_000
    c.train.eval_every = c.train.checkpoint_every = 4_000
  elif arg:
    raise ValueError(f"Unknown variant {arg!r} of deeplabv3plus_r50_voc: use '' or '40k'.")
  return c

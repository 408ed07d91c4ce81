"""Fine-tunes the official Segment Anything ViT-B on COCO 2017 instances, the image encoder
frozen: `sam_vit_b_finetune` with COCO's objects as the things to click on.

Download train2017/, val2017/ and annotations/ from the COCO site into one folder and Meta's
`sam_vit_b_01ec64.pth` (github.com/facebookresearch/segment-anything), prepare COCO once, then
train:

  segjax data prepare coco --manual_dir=~/data/coco
  segjax train --config experiments/sam_vit_b_coco.py --workdir runs/sam_vit_b_coco \
    --config.model.pretrained=~/checkpoints/sam_vit_b_01ec64.pth

Every non-crowd instance is an object (class-agnostic; crowds are void), the 16 largest of an
image. Evaluation is RITM's click protocol up to 20 clicks on COCO val2017 (NoC@85/90, mIoU
after 1, 3, 5 clicks). Reported: the SAM paper (Kirillov et al., 2023, Fig. 9) evaluates single
points on 23 other data sets and publishes no COCO fine-tuning number; the baseline to beat is the
released ViT-B itself under the same protocol (`segjax.promptable.simulate_clicks` with
`SamPredictor.from_checkpoint`). Not yet run with segjax (no accelerator here).
"""

import pathlib

from segjax.config import load_experiment

VARIANTS = ("",)  # the arguments get_config takes


def get_config(arg: str = ""):
  if arg:
    raise ValueError(f"Unknown variant {arg!r} of sam_vit_b_coco: use ''.")
  c = load_experiment(pathlib.Path(__file__).with_name("sam_vit_b_finetune.py")).get_config()
  c.data.name = "coco"
  c.data.num_threads = 16
  c.train.steps = 20_000
  c.train.eval_every = c.train.checkpoint_every = 2_000
  return c

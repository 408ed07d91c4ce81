"""Fine-tunes the official Segment Anything ViT-B on your objects: a `folder` data set with
instance masks (README, "Your own data"), the image encoder frozen.

  segjax train --config experiments/sam_vit_b_finetune.py --workdir runs/sam_vit_b_ft \
    --config.model.pretrained=~/checkpoints/sam_vit_b_01ec64.pth \
    --config.data.root=~/data/my_objects

`sam_vit_b_01ec64.pth` is Meta's release (github.com/facebookresearch/segment-anything), read
without torch. Every thing instance is an object to segment, class-agnostic. Training is SAM's
interactive recipe (`segjax.models.sam.interactive`): a first point or jittered box, then 8 clicks
from the error region, focal : dice = 20 : 1 on the best multimask output plus the IoU head's MSE.
Only the prompt encoder and mask decoder train (4.1M parameters); the ViT (89.7M) stays as
released, so its gradients are never computed. Evaluation is RITM's protocol up to 20 clicks:
NoC@85/90 and mIoU after 1, 3, 5 clicks; the best checkpoint by mIoU after one click. Click on
the result with `segjax.promptable.SamPredictor.from_run("runs/sam_vit_b_ft")`.

Images are scaled by 0.5-1.5 and cropped to 1024x1024, SAM's input (smaller ones are padded).
Sized for one accelerator of 40 GB or more; set `model.dtype=bfloat16` to halve activations.
Variant `:tiny`: a tiny SAM of the sizes below on 64x64 crops, for tests with a tiny checkpoint.
"""

from segjax.config import base_config, tiny

VARIANTS = ("", "tiny")  # the arguments get_config takes


def get_config(arg: str = ""):
  c = base_config()
  c.task = "promptable"
  c.data.name = "folder"
  c.data.image_size = (1024, 1024)
  c.data.scale_range = (0.5, 1.5)
  c.data.batch_size = 8
  c.data.max_instances = 16  # objects per image, largest first
  c.model.name = "sam_interactive"
  c.model.kwargs = {"size": "vit_b", "clicks": 8, "eval_clicks": 20}
  c.loss.terms = {"ce": {"weight": 1.0}}  # unused: the promptable task has its own losses
  c.optimizer.name = "adamw"
  c.optimizer.learning_rate = 1e-4
  c.optimizer.weight_decay = 0.01
  c.optimizer.frozen = ("^sam/image_encoder/",)
  c.schedule.name = "cosine"
  c.schedule.warmup_steps = 100
  c.train.steps = 2000
  c.train.eval_every = c.train.checkpoint_every = 500
  c.eval.metric = "miou@1"
  c.eval.batch_size = 8
  if arg == "tiny":
    tiny(c)
    c.data.name = "folder"
    c.model.name = "sam_interactive"
    c.model.kwargs = {
      "image_size": 64,
      "patch_size": 8,
      "encoder_depth": 2,
      "encoder_width": 32,
      "encoder_heads": 2,
      "encoder_window": 4,
      "global_attention_indexes": (1,),
      "prompt_dim": 32,
      "decoder_depth": 1,
      "decoder_mlp_dim": 64,
      "iou_head_hidden": 32,
      "mask_in_chans": 8,
      "clicks": 2,
      "eval_clicks": 5,
    }
    c.data.image_size, c.data.max_instances = (64, 64), 4
  elif arg:
    raise ValueError(f"Unknown variant {arg!r} of sam_vit_b_finetune: use '' or 'tiny'.")
  return c

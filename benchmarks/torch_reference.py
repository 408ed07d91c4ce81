"""The PyTorch side of the comparison: segjax's architectures trained in PyTorch, eager, compiled.

  python benchmarks/torch_reference.py --model unet --batch-size 8 --image-size 128 [--compile]
      [--optimizer adamw --lr 1e-3 --weight-decay 1e-4 --clip 1.0 --loss dice_ce] [--json] [--paced]

One train step is what segjax's is: forward in training mode (batch norm updating its statistics),
the loss (cross-entropy with void pixels ignored, plus soft Dice for `dice_ce`), backward, global
gradient-norm clipping, and the optimiser update with weight decay on weights only. The models are
in `torch_models.py`; the timing protocol (warm-up, `repeats` runs of `steps` steps on one fixed
batch, median and range) is `segjax bench`'s, `--paced` included. torch is needed only here, never
by segjax.
"""

import argparse
import json
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F
import torch_models

MODELS = {"unet": torch_models.UNet, "deeplabv3plus_resnet50": torch_models.DeepLabV3Plus}


def make_optimizer(model, name: str, lr: float, weight_decay: float):
  """Decay on weights only: segjax leaves biases and normalisation parameters undecayed."""
  decay = [p for p in model.parameters() if p.ndim > 1]
  rest = [p for p in model.parameters() if p.ndim <= 1]
  groups = [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
  if name == "adamw":
    return torch.optim.AdamW(groups, lr=lr)
  return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", choices=sorted(MODELS), required=True)
  parser.add_argument("--num-classes", type=int, default=7)
  parser.add_argument("--batch-size", type=int, default=8)
  parser.add_argument("--image-size", type=int, nargs=2, default=(128, 128))
  parser.add_argument("--compile", action="store_true", help="torch.compile the forward + loss")
  parser.add_argument("--optimizer", choices=("adamw", "sgd"), default="adamw")
  parser.add_argument("--lr", type=float, default=1e-3)
  parser.add_argument("--weight-decay", type=float, default=1e-4)
  parser.add_argument("--clip", type=float, default=1.0, help="global norm; 0 disables")
  parser.add_argument("--loss", choices=("ce", "dice_ce"), default="dice_ce")
  parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
  parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
  parser.add_argument("--steps", type=int, default=10)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--json", action="store_true")
  parser.add_argument(
    "--paced", action="store_true", help="print 'ready' and wait for a line before each repeat"
  )
  args = parser.parse_args()

  torch.manual_seed(0)
  device = torch.device(args.device)
  model = MODELS[args.model](args.num_classes).to(device).train()
  optimizer = make_optimizer(model, args.optimizer, args.lr, args.weight_decay)
  height, width = args.image_size
  images = torch.randn(args.batch_size, 3, height, width, device=device)
  labels = torch.randint(0, args.num_classes, (args.batch_size, height, width), device=device)
  labels[:, :4] = 255  # a void band, as real labels have

  def forward_loss(images, labels):
    with torch.autocast(device.type, torch.bfloat16, enabled=args.dtype == "bfloat16"):
      logits = model(images)
    logits = logits.float()
    loss = F.cross_entropy(logits, labels, ignore_index=255)
    if args.loss == "dice_ce":
      loss = loss + torch_models.dice_loss(logits, labels)
    return loss

  loss_fn = torch.compile(forward_loss) if args.compile else forward_loss

  def step():
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(images, labels)
    loss.backward()
    if args.clip:
      torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
    optimizer.step()
    return loss

  def sync():
    if device.type == "cuda":
      torch.cuda.synchronize()

  start = time.perf_counter()
  step().item()  # eager: the first step allocates; compiled: it compiles
  first_s = time.perf_counter() - start
  step().item()
  seconds = []
  for _ in range(args.repeats):
    if args.paced:
      print("ready", flush=True)
      sys.stdin.readline()
    sync()
    start = time.perf_counter()
    for _ in range(args.steps):
      loss = step()
    loss.item()
    sync()
    seconds.append((time.perf_counter() - start) / args.steps)

  steps_per_s = 1.0 / statistics.median(seconds)
  if device.type == "cuda":
    memory, source = torch.cuda.max_memory_allocated(device), "device"
  else:
    memory, source = None, None
  record = {
    "what": "train",
    "framework": "pytorch-compiled" if args.compile else "pytorch-eager",
    "torch": torch.__version__,
    "model": args.model,
    "parameters": torch_models.count_parameters(model),
    "batch_size": args.batch_size,
    "image_size": [height, width],
    "dtype": args.dtype,
    "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
    "threads": torch.get_num_threads(),
    "images_per_s": steps_per_s * args.batch_size,
    "steps_per_s": steps_per_s,
    "steps_per_s_min": 1.0 / max(seconds),
    "steps_per_s_max": 1.0 / min(seconds),
    "first_step_s": first_s,
    "peak_memory_bytes": memory,
    "peak_memory_source": source,
    "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    "steps": args.steps,
    "repeats": args.repeats,
  }
  if args.json:
    print(json.dumps(record))
  else:
    print(
      f"{record['framework']} {args.model}: {steps_per_s:.3f} steps/s "
      f"({record['steps_per_s_min']:.3f}-{record['steps_per_s_max']:.3f}), "
      f"{record['images_per_s']:.1f} images/s, first step {first_s:.1f} s, "
      f"{record['parameters']:,} parameters"
    )


if __name__ == "__main__":
  main()

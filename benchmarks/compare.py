"""segjax vs PyTorch: the same architectures' train steps, measured on this machine in one run.

  python benchmarks/compare.py                      # print the comparison
  python benchmarks/compare.py --write BENCHMARKS.md [--sam]   # and regenerate BENCHMARKS.md

For each case, `segjax bench --json` times the experiment's train step and
`torch_reference.py --json` times the same architecture, batch, input size, loss and optimiser
in PyTorch eager and `torch.compile`d, each in its own process. The processes are set up one after
the other, then take turns repeat by repeat (`--paced`), so that a machine whose speed drifts
(shared cores, thermal limits) slows every framework alike. The ratio is
segjax's step time over PyTorch's (below 1: segjax is faster) and segjax's peak memory over
PyTorch's (the device allocator's high-water mark on accelerators, the process's peak resident
memory on CPU).

On CPU the cases are sized for two cores; on an accelerator they are the published training sizes
in bfloat16. `--write` replaces only this platform's section of the file, so CPU and accelerator
results live side by side.
"""

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import pathlib
import platform
import re
import subprocess
import sys

from segjax import config as config_lib

REPO = pathlib.Path(__file__).resolve().parents[1]
TORCH_REFERENCE = REPO / "benchmarks" / "torch_reference.py"
SAM_PREDICTOR = REPO / "benchmarks" / "sam_predictor.py"


@dataclasses.dataclass(frozen=True)
class Case:
  key: str  # --cases picks by it
  name: str
  experiment: str  # path[:arg] of the experiment file
  overrides: dict  # config keys set on top of it
  torch_model: str | None  # torch_reference.py --model, or None: segjax only

  def config(self):
    return config_lib.experiment_config(str(REPO / self.experiment), self.overrides)


SEED_UNET = {"model.kwargs.widths": (64, 128, 256)}
CPU_CASES = (
  Case(
    "unet",
    "U-Net 64-128-256, batch 8, 128x128, float32, AdamW, Dice+CE",
    "experiments/unet_shapes.py",
    {**SEED_UNET, "data.batch_size": 8, "data.image_size": (128, 128)},
    "unet",
  ),
  Case(
    "deeplabv3plus",
    "DeepLabv3+ R50 OS16, batch 8, 128x128, float32, SGD, CE",
    "experiments/deeplabv3plus_r50_shapes.py",
    {"data.batch_size": 8, "data.image_size": (128, 128), "data.variant": "128"},
    "deeplabv3plus_resnet50",
  ),
)
ACCELERATOR = {"model.dtype": "bfloat16"}
ACCELERATOR_CASES = (
  Case(
    "unet",
    "U-Net 64-128-256, batch 8, 576x576 (572 rounded up to a multiple of 8), bfloat16",
    "experiments/unet_shapes.py",
    {**SEED_UNET, **ACCELERATOR, "data.batch_size": 8, "data.image_size": (576, 576)},
    "unet",
  ),
  Case(
    "deeplabv3plus",
    "DeepLabv3+ R50 OS16, batch 8, 512x512, bfloat16",
    "experiments/deeplabv3plus_r50_shapes.py",
    {**ACCELERATOR, "data.batch_size": 8, "data.image_size": (512, 512), "data.variant": "128"},
    "deeplabv3plus_resnet50",
  ),
  Case(
    "mask_rcnn",
    "Mask R-CNN R50-FPN, batch 8, 800x1344 (1333 padded to a multiple of 32), bfloat16",
    "experiments/mask_rcnn_r50_fpn_coco.py",
    {
      **ACCELERATOR,
      "data.name": "shapes",
      "data.variant": "128",
      "data.batch_size": 8,
      "data.image_size": (800, 1344),
      "eval.split": "validation",
    },
    None,
  ),
)


def torch_args(config, num_classes: int) -> list[str]:
  """torch_reference.py's flags for the batch, size, dtype, loss and optimiser of `config`."""
  terms = set(config.loss.terms.keys())
  losses = {frozenset({"ce"}): "ce", frozenset({"ce", "dice"}): "dice_ce"}
  if frozenset(terms) not in losses:
    raise ValueError(f"the PyTorch reference has no loss {sorted(terms)}; it has ce and dice_ce.")
  return [
    f"--num-classes={num_classes}",
    f"--batch-size={config.data.batch_size}",
    "--image-size",
    *map(str, config.data.image_size),
    f"--dtype={config.model.dtype}",
    f"--loss={losses[frozenset(terms)]}",
    f"--optimizer={config.optimizer.name}",
    f"--lr={config.optimizer.learning_rate}",
    f"--weight-decay={config.optimizer.weight_decay}",
    f"--clip={config.optimizer.grad_clip_norm}",
  ]


def run_json(command: list[str]) -> dict:
  """Runs `command`, relays its stderr, and returns the last JSON object it printed."""
  print("$", " ".join(command), file=sys.stderr, flush=True)
  result = subprocess.run(command, cwd=REPO, stdout=subprocess.PIPE, text=True, check=True)
  lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
  if not lines:
    raise RuntimeError(f"{command[:3]} printed no JSON record:\n{result.stdout}")
  return json.loads(lines[-1])


class Paced:
  """A `--paced` benchmark process: it says "ready" before each timed repeat and waits for "go"."""

  def __init__(self, command: list[str]):
    print("$", " ".join(command), file=sys.stderr, flush=True)
    self.command = command
    self.process = subprocess.Popen(
      command, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    self.record = None
    self.wait()  # set up and compiled, before the next process starts

  def wait(self) -> None:
    """Reads until "ready" (its next repeat waits) or its JSON record (it has finished)."""
    for line in self.process.stdout:
      if line.strip() == "ready":
        return
      if line.startswith("{"):
        self.record = json.loads(line)
    if self.process.wait() != 0:
      raise RuntimeError(f"{' '.join(self.command[:4])} failed (exit {self.process.returncode}).")

  def go(self) -> None:
    """Runs one timed repeat and waits until it is done."""
    self.process.stdin.write("go\n")
    self.process.stdin.flush()
    self.wait()


def interleaved(commands: dict[str, list[str]], repeats: int) -> dict[str, dict]:
  """Runs `--paced` benchmark processes set up one by one, then repeat by repeat in turn."""
  processes = {name: Paced([*command, "--paced"]) for name, command in commands.items()}
  for _ in range(repeats):
    for process in processes.values():
      process.go()
  for process in processes.values():
    process.process.stdin.close()
    process.wait()  # the rest of its run (segjax: the input pipeline's rate) and its record
  return {name: process.record for name, process in processes.items()}


def measure_case(case: Case, steps: int, repeats: int, torch_compile: bool) -> dict:
  from segjax.data import open_dataset

  config = case.config()
  segjax = [sys.executable, "-m", "segjax.main", "bench", f"--config={REPO / case.experiment}"]
  segjax += [f"--config.{key}={value}" for key, value in case.overrides.items()]
  segjax += [f"--steps={steps}", f"--repeats={repeats}", "--json"]
  commands = {"segjax": segjax}
  if case.torch_model:
    num_classes = open_dataset(config.data, config.data.train_split).num_classes
    reference = [sys.executable, str(TORCH_REFERENCE), f"--model={case.torch_model}"]
    reference += torch_args(config, num_classes)
    reference += [f"--steps={steps}", f"--repeats={repeats}", "--json"]
    commands["pytorch-eager"] = reference
    if torch_compile:
      commands["pytorch-compiled"] = [*reference, "--compile"]
  return interleaved(commands, repeats)


def memory(record: dict) -> int | None:
  """Device high-water mark where there is one; on CPU the process's peak resident memory."""
  if record.get("peak_memory_source") == "device":
    return record["peak_memory_bytes"]
  return record.get("peak_rss_bytes")


def _mib(value: int | None) -> str:
  return "-" if value is None else f"{value / 2**20:,.0f} MiB"


def table(case: Case, results: dict) -> list[str]:
  segjax = results["segjax"]
  rows = [
    f"**{case.name}** (`{case.experiment}`)",
    "",
    "| framework | steps/s (range) | images/s | ms/step | compile / first step s | memory | "
    "time ratio segjax/this | memory ratio segjax/this |",
    "|---|---|---|---|---|---|---|---|",
  ]
  for name, r in results.items():
    compile_s = r.get("compile_s", r.get("first_step_s"))
    time_ratio = r["steps_per_s"] / segjax["steps_per_s"]
    memory_ratio = (memory(segjax) or 0) / (memory(r) or float("nan"))
    rows.append(
      f"| {name} | {r['steps_per_s']:.3f} ({r['steps_per_s_min']:.3f}-{r['steps_per_s_max']:.3f})"
      f" | {r['images_per_s']:.1f} | {1e3 / r['steps_per_s']:.0f} | {compile_s:.1f} | "
      f"{_mib(memory(r))} | {'' if name == 'segjax' else f'{time_ratio:.2f}'} | "
      f"{'' if name == 'segjax' else f'{memory_ratio:.2f}'} |"
    )
  flops = segjax.get("flops_per_step")
  mfu = segjax.get("mfu")
  data = segjax.get("data_images_per_s")
  rows += [
    "",
    f"segjax: {flops / 1e9:.1f} GFLOP per step (XLA cost analysis), "
    f"{'-' if mfu is None else f'{100 * mfu:.1f}%'} of the peak "
    f"({(segjax.get('peak_flops') or 0) / 1e9:.0f} GFLOP/s, {segjax['peak_flops_source']}); "
    f"input pipeline {data:.1f} images/s"
    + (" — data loading is the bottleneck." if segjax.get("input_bound") else "."),
    "",
  ]
  return rows


def sam_table(record: dict) -> list[str]:
  rows = [
    f"**SAM predictor** ({record['model']}, random weights of the published size, a "
    f"{record['image_size'][1]}x{record['image_size'][0]} image; `benchmarks/sam_predictor.py`)",
    "",
    "| step | latency |",
    "|---|---|",
    f"| first `set_image` (compiles) | {record['first_set_image_s']:.1f} s |",
    f"| `set_image` (image encoder) | {record['set_image_ms']:.0f} ms |",
  ]
  for name, ms in record["predict_ms"].items():
    rows.append(f"| `predict`, {name} (per click) | {ms:.1f} ms |")
  return [*rows, ""]


def machine() -> str:
  import jax

  cpu = platform.processor() or platform.machine()
  cpuinfo = pathlib.Path("/proc/cpuinfo")
  if cpuinfo.exists():
    names = re.findall(r"model name\s*:\s*(.*)", cpuinfo.read_text())
    cpu = names[0] if names else cpu
  versions = {"python": platform.python_version(), "jax": jax.__version__}
  for package in ("jaxlib", "flax", "optax", "torch"):
    with contextlib.suppress(ImportError):
      versions[package] = __import__(package).__version__
  device = jax.devices()[0]
  devices = f"{jax.device_count()} x {device.device_kind}" if device.platform != "cpu" else "none"
  return (
    f"{datetime.date.today().isoformat()}; {cpu}, {os.cpu_count()} cores; accelerators: {devices}; "
    + ", ".join(f"{k} {v}" for k, v in versions.items())
    + f"; XLA_FLAGS={os.environ.get('XLA_FLAGS', '') or '(segjax defaults)'}"
  )


def write_section(path: pathlib.Path, section: str, body: str) -> None:
  """Replaces `section`'s block of `path` (between its markers), keeping every other section."""
  begin, end = f"<!-- begin {section} -->", f"<!-- end {section} -->"
  block = f"{begin}\n{body.rstrip()}\n{end}"
  text = path.read_text() if path.exists() else ""
  if begin in text and end in text:
    head, rest = text.split(begin, 1)
    text = head + block + rest.split(end, 1)[1]
  else:
    text = text.rstrip() + ("\n\n" if text else "") + block + "\n"
  path.write_text(text)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--cases", default="", help="comma-separated keys: unet,deeplabv3plus,...")
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
  parser.add_argument("--sam", action="store_true", help="also time the SAM ViT-B predictor")
  parser.add_argument("--write", type=pathlib.Path, help="regenerate this file's section")
  args = parser.parse_args()

  import jax

  accelerator = jax.devices()[0].platform != "cpu"
  cases = ACCELERATOR_CASES if accelerator else CPU_CASES
  if args.cases:
    keys = args.cases.split(",")
    unknown = sorted(set(keys) - {case.key for case in cases})
    if unknown:
      parser.error(f"--cases: {unknown} unknown; choose from {[case.key for case in cases]}.")
    cases = tuple(case for case in cases if case.key in keys)
  section = "accelerator" if accelerator else "cpu"
  command = " ".join(["python benchmarks/compare.py", *sys.argv[1:]])
  lines = [f"Measured {machine()}.", "", f"Command: `{command}`", ""]
  for case in cases:
    lines += table(case, measure_case(case, args.steps, args.repeats, not args.no_compile))
  if args.sam:
    lines += sam_table(run_json([sys.executable, str(SAM_PREDICTOR), "--json"]))
  body = "\n".join(lines)
  print(body)
  if args.write:
    write_section(args.write, section, body)
    print(f"Wrote the {section} section of {args.write}.", file=sys.stderr)


if __name__ == "__main__":
  main()

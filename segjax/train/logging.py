"""Where metrics go: `metrics.jsonl`, TensorBoard events and a live progress line."""

import json
import math
import pathlib
import sys
import time
from typing import Any

import jax
import numpy as np


def _scalars(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
  """Numeric scalars, with nested dicts flattened (`per_class_iou/road`); NaN and text dropped."""
  out = {}
  for key, value in metrics.items():
    if isinstance(value, dict):
      out.update(_scalars(value, f"{prefix}{key}/"))
    elif isinstance(value, int | float | np.number) and not np.isnan(value):
      out[prefix + key] = float(value)
  return out


def _jsonable(value):
  if isinstance(value, dict):
    return {k: _jsonable(v) for k, v in value.items()}
  if isinstance(value, np.ndarray | list | tuple):
    return [_jsonable(v) for v in np.asarray(value).tolist()]
  if isinstance(value, float | np.floating):
    value = float(value)
    return None if math.isnan(value) else value  # JSON has no NaN: absent is null
  if isinstance(value, np.integer):
    return int(value)
  return value


class MetricWriter:
  """Appends one JSON object per line to `metrics.jsonl` and mirrors scalars to TensorBoard.

  Only process 0 writes. Earlier lines are never rewritten: a resumed run may append a step again,
  and `read_metrics` keeps the last record of each (split, step).
  """

  def __init__(self, workdir: str | pathlib.Path):
    self.enabled = jax.process_index() == 0
    self.path = pathlib.Path(workdir) / "metrics.jsonl"
    self._tb = None
    if self.enabled:
      from tensorboardX import SummaryWriter

      self._tb = SummaryWriter(str(pathlib.Path(workdir) / "events"))

  def write(self, step: int, split: str, metrics: dict[str, Any]) -> None:
    if not self.enabled:
      return
    record = {"step": int(step), "split": split, **_jsonable(metrics)}
    with self.path.open("a") as f:
      f.write(json.dumps(record) + "\n")
    for name, value in _scalars(metrics).items():
      self._tb.add_scalar(f"{split}/{name}", value, step)
    self._tb.flush()

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()


def read_metrics(workdir: str | pathlib.Path) -> list[dict[str, Any]]:
  """The records of `workdir/metrics.jsonl`, the last one of each (split, step), by step."""
  path = pathlib.Path(workdir) / "metrics.jsonl"
  latest = {}
  for line in path.read_text().splitlines():
    if line.strip():
      record = json.loads(line)
      latest[(record["split"], record["step"])] = record
  return sorted(latest.values(), key=lambda r: (r["step"], r["split"]))


def _duration(seconds: float) -> str:
  seconds = int(seconds)
  return (
    f"{seconds // 3600}h{seconds // 60 % 60:02d}m"
    if seconds >= 3600
    else (f"{seconds // 60}m{seconds % 60:02d}s")
  )


class Progress:
  """A live line `step 120/2000 | loss 0.4521 | 3.1 steps/s | ETA 10m06s`.

  On a terminal it rewrites itself in place; in a log file it prints a line per update.
  """

  def __init__(self, total: int, start: int):
    self.total, self.start = total, start
    self.enabled = jax.process_index() == 0
    self.interactive = sys.stdout.isatty()
    self._t0 = time.perf_counter()

  def restart_clock(self, step: int) -> None:
    """Excludes compilation (or evaluation) from the speed estimate."""
    self.start, self._t0 = step, time.perf_counter()

  def update(self, step: int, metrics: dict[str, float]) -> float:
    rate = (step - self.start) / max(time.perf_counter() - self._t0, 1e-9)
    if self.enabled:
      eta = _duration((self.total - step) / rate) if rate > 0 else "?"
      shown = " | ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k in ("loss", "lr"))
      line = f"step {step}/{self.total} | {shown} | {rate:.2f} steps/s | ETA {eta}"
      end = "" if self.interactive else "\n"
      print(("\r\033[K" if self.interactive else "") + line, end=end, flush=True)
    return rate

  def message(self, text: str) -> None:
    """Prints `text` on its own line(s), below the live line."""
    if self.enabled:
      print(("\n" if self.interactive else "") + text, flush=True)

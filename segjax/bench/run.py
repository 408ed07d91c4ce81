"""`segjax bench`: train, eval and predict steps and the input pipeline of an experiment, measured.

Each measured program is compiled once ahead of time (cold: the persistent compilation cache is
off unless asked for), warmed up, then run `repeats` times `steps` steps on one fixed batch, so
that the numbers are the device's alone; the input pipeline is timed apart and compared with the
train step.
"""

import dataclasses
import math
import sys
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from segjax import config as config_lib
from segjax.bench import hardware
from segjax.bench.measure import (
  Program,
  Timing,
  compile_program,
  device_peak_memory,
  process_peak_rss,
  time_steps,
)
from segjax.data import open_dataset
from segjax.data.loader import train_stream
from segjax.train import sharding
from segjax.train.evaluate import inference_fn, split_batches
from segjax.train.loop import Experiment, backbone_kwargs, build, init_state, make_train_step

WHATS = ("train", "eval", "predict", "data")


@dataclasses.dataclass
class Record:
  """One measured configuration; `segjax bench --json` prints it as one JSON object."""

  what: str
  model: str
  batch_size: int  # global
  image_size: tuple[int, int]
  dtype: str  # compute dtype
  device: str
  num_devices: int
  images_per_s: float
  steps_per_s: float
  steps_per_s_min: float
  steps_per_s_max: float
  compile_s: float | None  # tracing + compilation
  compilation_cache: bool  # whether the persistent compilation cache could serve compile_s
  peak_memory_bytes: int | None
  peak_memory_source: str | None  # "device" (allocator high-water mark) | "compiled" (XLA) | None
  peak_rss_bytes: int  # this process's peak resident memory so far
  flops_per_step: float | None  # whole program, all devices
  mfu: float | None  # model FLOP/s utilisation against the devices' peak
  peak_flops: float | None  # all devices together
  peak_flops_source: str
  steps: int
  repeats: int
  data_images_per_s: float | None = None  # train only: the input pipeline's own rate
  input_bound: bool | None = None  # train only: the pipeline is slower than the step


def benchmark(
  config: ml_collections.ConfigDict,
  whats: tuple[str, ...] = ("train",),
  *,
  steps: int = 10,
  repeats: int = 5,
  log: Callable[[str], None] = lambda message: print(message, file=sys.stderr),
  before_repeat: Callable[[], None] = lambda: None,
  compilation_cache: bool = False,
) -> list[Record]:
  """Measures `whats` (of `WHATS`) for the model and batch of `config`, in that order.

  `before_repeat` runs before each timed repeat of a program, untimed: a comparison uses it to
  take turns with another process (`segjax bench --paced`). Compile times are cold unless
  `compilation_cache`; JAX decides whether to use its cache at a process's first compilation, so
  in a process that has compiled before, the cache stays as it was then.
  """
  unknown = sorted(set(whats) - set(WHATS))
  if unknown:
    raise ValueError(f"bench: unknown --what {unknown}; choose from {', '.join(WHATS)}.")
  config_lib.validate(config)
  jax.config.update("jax_enable_compilation_cache", compilation_cache)
  dataset = open_dataset(config.data, config.data.train_split)
  exp = build(config, dataset)
  state = init_state(exp, jax.random.key(config.seed))
  measure = _Measure(exp, steps, repeats, log, before_repeat)
  records = []
  for what in whats:
    log(f"bench: {what} ({config.model.name}, batch {_batch_size(config, what)}) ...")
    if what == "train":
      records.append(measure.train(state, dataset))
    elif what == "eval":
      records.append(measure.eval(state))
    elif what == "predict":
      records.append(measure.predict(state))
    else:
      records.append(measure.data(dataset))
  return records


def _batch_size(config, what: str) -> int:
  return {"eval": config.eval.batch_size, "predict": 1}.get(what, config.data.batch_size)


@dataclasses.dataclass
class _Measure:
  exp: Experiment
  steps: int
  repeats: int
  log: Callable[[str], None]
  before_repeat: Callable[[], None]

  def train(self, state, dataset) -> Record:
    exp = self.exp
    stream = self._stream(dataset)
    batch = sharding.to_global(next(stream), exp.mesh)
    key = jax.random.key(1)
    program = compile_program(make_train_step(exp), state, batch, key)
    holder = [jax.tree.map(jnp.copy, state)]  # the step donates its state

    def step():
      holder[0], metrics = program.compiled(holder[0], batch, key)
      return metrics

    timing = self._time(step)
    record = self._record("train", exp.config.data.batch_size, program, timing)
    # A fresh stream: the first one has filled its prefetch buffer while the steps ran.
    data = self._data_rate(self._stream(dataset))
    record.data_images_per_s = data.steps_per_s * exp.config.data.batch_size
    record.input_bound = record.data_images_per_s < record.images_per_s
    if record.input_bound:
      self.log(
        f"bench: data loading is the bottleneck: the input pipeline makes "
        f"{record.data_images_per_s:.1f} images/s, the train step takes {record.images_per_s:.1f}"
        f" (raise config.data.num_threads or simplify augmentation)."
      )
    return record

  def eval(self, state) -> Record:
    exp = self.exp
    dataset = open_dataset(exp.config.data, exp.config.eval.split)
    local = next(iter(split_batches(exp, dataset, limit=exp.config.eval.batch_size)))
    batch = sharding.to_global(local, exp.mesh)
    program = compile_program(exp.eval_step, state, batch)
    timing = self._time(lambda: program.compiled(state, batch))
    return self._record("eval", exp.config.eval.batch_size, program, timing)

  def predict(self, state) -> Record:
    """One image at the eval size, through the inference mode of `config.eval`."""
    exp = self.exp
    outputs_fn = inference_fn(exp.model, exp.config)
    size_hw = config_lib.eval_image_size(exp.config)
    image = jnp.zeros((1, *size_hw, 3), jnp.uint8)
    run = jax.jit(lambda state, image: outputs_fn(state, exp.task.inputs({"image": image})))
    program = compile_program(run, state, image)
    timing = self._time(lambda: program.compiled(state, image))
    return self._record("predict", 1, program, timing)

  def data(self, dataset) -> Record:
    timing = self._data_rate(self._stream(dataset))
    return self._record("data", self.exp.config.data.batch_size, None, timing)

  def _time(self, step) -> Timing:
    return time_steps(
      step, steps=self.steps, repeats=self.repeats, before_repeat=self.before_repeat
    )

  def _stream(self, dataset):
    exp = self.exp
    return train_stream(
      dataset, exp.config.data, exp.task.fields, seed=exp.config.seed, prepare=exp.task.prepare
    )

  def _data_rate(self, stream) -> Timing:
    """Batches/s of the host's input pipeline alone (after a first batch that starts it)."""
    return time_steps(lambda: next(stream), steps=self.steps, repeats=self.repeats)

  def _record(self, what: str, batch_size: int, program: Program | None, timing: Timing) -> Record:
    config = self.exp.config
    num_devices = self.exp.mesh.size
    size_hw = (
      config_lib.eval_image_size(config) if what in ("eval", "predict") else config.data.image_size
    )
    device_peak, source = hardware.peak_flops(config.model.dtype)
    peak = device_peak * num_devices if device_peak else None
    flops = program.flops if program else None
    if flops is not None and num_devices > 1:
      flops *= num_devices  # XLA counts one device's share of a partitioned program
    steps_per_s = timing.steps_per_s
    device_memory = device_peak_memory() if program else None
    compiled_memory = program.memory_bytes if program else None
    memory, memory_source = (
      (device_memory, "device") if device_memory is not None else (compiled_memory, "compiled")
    )
    return Record(
      what=what,
      model=config.model.name + (f"_{config.model.backbone.name}" if _has_backbone(config) else ""),
      batch_size=batch_size,
      image_size=tuple(size_hw),
      dtype=config.model.dtype,
      device=hardware.describe(),
      num_devices=num_devices,
      images_per_s=steps_per_s * batch_size,
      steps_per_s=steps_per_s,
      steps_per_s_min=timing.steps_per_s_range[0],
      steps_per_s_max=timing.steps_per_s_range[1],
      compile_s=program.compile_s if program else None,
      compilation_cache=bool(
        jax.config.jax_enable_compilation_cache and jax.config.jax_compilation_cache_dir
      ),
      peak_memory_bytes=memory,
      peak_memory_source=memory_source if memory is not None else None,
      peak_rss_bytes=process_peak_rss(),
      flops_per_step=flops,
      mfu=flops * steps_per_s / peak if flops and peak else None,
      peak_flops=peak,
      peak_flops_source=source,
      steps=self.steps,
      repeats=self.repeats,
    )


def _has_backbone(config) -> bool:
  return "backbone" in backbone_kwargs(config)


def format_records(records: list[Record]) -> str:
  """A table: one row per record, the numbers people compare first."""
  header = (
    "what", "model", "batch", "size", "images/s", "steps/s (range)", "compile s", "memory",
    "GFLOP/step", "MFU",
  )  # fmt: skip
  rows = [header]
  for r in records:
    gflops = r.flops_per_step / 1e9 if r.flops_per_step is not None else None
    rows.append(
      (
        r.what,
        r.model,
        str(r.batch_size),
        "x".join(map(str, r.image_size)),
        f"{r.images_per_s:.1f}",
        f"{r.steps_per_s:.2f} ({r.steps_per_s_min:.2f}-{r.steps_per_s_max:.2f})",
        _maybe(r.compile_s, ".1f"),
        _bytes(r.peak_memory_bytes),
        _maybe(gflops, ".1f"),
        _maybe(r.mfu and 100 * r.mfu, ".1f", "%"),
      )
    )
  widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
  lines = [
    "  ".join(
      cell.ljust(w) if i < 2 else cell.rjust(w)
      for i, (cell, w) in enumerate(zip(row, widths, strict=True))
    )
    for row in rows
  ]
  if records:
    first = records[0]
    peak = _maybe(first.peak_flops and first.peak_flops / 1e9, ".0f")
    lines.append(
      f"device: {first.device} x{first.num_devices}, {first.dtype}; peak {peak} GFLOP/s "
      f"({first.peak_flops_source}); {first.repeats} repeats of {first.steps} steps"
    )
  return "\n".join(lines)


def _maybe(value: Any, spec: str, suffix: str = "") -> str:
  return (
    "-"
    if value is None or (isinstance(value, float) and math.isnan(value))
    else (f"{value:{spec}}{suffix}")
  )


def _bytes(value: int | None) -> str:
  if value is None:
    return "-"
  return f"{value / 2**20:.0f} MiB" if value < 2**30 else f"{value / 2**30:.2f} GiB"

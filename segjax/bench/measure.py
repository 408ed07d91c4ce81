"""Measuring one compiled program: compile time, XLA's FLOP count and memory, and steps/s.

`compile_program` lowers and compiles ahead of time, so that compilation is timed on its own and
the program's cost and memory analyses are at hand before it runs.
"""

import dataclasses
import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import jax


@dataclasses.dataclass
class Program:
  compiled: Any  # jax.stages.Compiled
  compile_s: float
  flops: float | None  # per call, as XLA's cost analysis counts them
  memory_bytes: int | None  # arguments + outputs + temporaries - donated aliases


def compile_program(jitted, *args) -> Program:
  """Lowers (traces) and compiles `jitted` for `args`, timing both together."""
  start = time.perf_counter()
  compiled = jitted.lower(*args).compile()
  compile_s = time.perf_counter() - start
  return Program(compiled, compile_s, program_flops(compiled), program_memory(compiled))


def program_flops(compiled) -> float | None:
  """FLOPs of one call of a compiled program, from XLA's HLO cost analysis (None if unsupported).

  A convolution of `k×k×C_in→C_out` over `B×H×W` outputs counts 2·B·H·W·k²·C_in·C_out.
  """
  analysis = compiled.cost_analysis()
  if isinstance(analysis, list | tuple):  # older jaxlib: one dict per partition
    analysis = analysis[0] if analysis else None
  if not analysis or "flops" not in analysis:
    return None
  return float(analysis["flops"])


def program_memory(compiled) -> int | None:
  """Bytes a compiled program holds while it runs, from XLA's buffer assignment."""
  stats = compiled.memory_analysis()
  if stats is None:
    return None
  return int(
    stats.argument_size_in_bytes
    + stats.output_size_in_bytes
    + stats.temp_size_in_bytes
    - stats.alias_size_in_bytes
  )


def device_peak_memory(device: jax.Device | None = None) -> int | None:
  """The allocator's high-water mark on `device` (GPU, TPU), or None where it keeps none (CPU)."""
  device = device or jax.local_devices()[0]
  stats = device.memory_stats()
  if not stats or "peak_bytes_in_use" not in stats:
    return None
  return int(stats["peak_bytes_in_use"])


def process_peak_rss() -> int:
  """This process's peak resident memory in bytes (Linux reports KiB, macOS bytes)."""
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return int(peak if sys.platform == "darwin" else peak * 1024)


@dataclasses.dataclass
class Timing:
  seconds_per_step: list[float]  # one entry per repeat: the mean over its steps

  @property
  def steps_per_s(self) -> float:
    return 1.0 / statistics.median(self.seconds_per_step)

  @property
  def steps_per_s_range(self) -> tuple[float, float]:
    return 1.0 / max(self.seconds_per_step), 1.0 / min(self.seconds_per_step)


def time_steps(
  step: Callable[[], Any],
  *,
  steps: int,
  repeats: int,
  warmup: int = 1,
  before_repeat: Callable[[], None] = lambda: None,
) -> Timing:
  """Times `repeats` runs of `steps` calls of `step` (which returns arrays to wait for).

  Calls are dispatched back to back and waited for once per repeat, as a training loop that does
  not sync with the host each step runs them. `before_repeat` runs, untimed, before each repeat
  (a comparison interleaves two programs' repeats with it).
  """
  for _ in range(warmup):
    jax.block_until_ready(step())
  per_step = []
  for _ in range(repeats):
    before_repeat()
    start = time.perf_counter()
    for _ in range(steps):
      out = step()
    jax.block_until_ready(out)
    per_step.append((time.perf_counter() - start) / steps)
  return Timing(per_step)

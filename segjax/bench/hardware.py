"""What the hardware can do: the name of the device and its peak FLOP/s, for utilisation figures.

Accelerators' peaks come from their vendors' data sheets (dense, no sparsity, per JAX device);
CPU peaks are measured with a matmul, because they depend on the machine's cores and vector units.
"""

import functools
import os
import time

import jax
import jax.numpy as jnp

# device_kind substring (lower case) -> (bfloat16/float16 peak, float32 peak), FLOP/s per device.
# float32 on NVIDIA Ampere and later is TF32 (JAX's default matmul precision there); TPUs run
# float32 matmuls at their bfloat16 rate by default. First match wins: specific names first.
PEAK_FLOPS = (
  ("h100 pcie", 756e12, 378e12),
  ("h100", 989e12, 495e12),
  ("h200", 989e12, 495e12),
  ("b200", 2250e12, 1100e12),
  ("a100", 312e12, 156e12),
  ("l40s", 362e12, 183e12),
  ("l4", 121e12, 60e12),
  ("a10", 125e12, 62.5e12),
  ("v100", 125e12, 15.7e12),
  ("t4", 65e12, 8.1e12),
  ("tpu v6", 918e12, 918e12),
  ("tpu v5 lite", 197e12, 197e12),
  ("tpu v5e", 197e12, 197e12),
  ("tpu v5", 459e12, 459e12),
  ("tpu v4", 275e12, 275e12),
)


def describe(device: jax.Device | None = None) -> str:
  """ "NVIDIA H100 80GB HBM3", "TPU v4", or "cpu (2 cores)"."""
  device = device or jax.devices()[0]
  if device.platform == "cpu":
    return f"cpu ({os.cpu_count()} cores)"
  return device.device_kind


def peak_flops(dtype, device: jax.Device | None = None) -> tuple[float | None, str]:
  """The device's peak FLOP/s for matmuls in `dtype`, and where the number comes from.

  Returns (None, reason) for an accelerator missing from `PEAK_FLOPS`.
  """
  device = device or jax.devices()[0]
  low_precision = jnp.dtype(dtype).itemsize < 4
  if device.platform == "cpu":
    return measured_matmul_flops(jnp.dtype(dtype).name), "measured matmul"
  kind = device.device_kind.lower()
  for name, low, full in PEAK_FLOPS:
    if name in kind:
      return (low if low_precision else full), "data sheet"
  return None, f"no peak known for {device.device_kind!r}"


@functools.cache
def measured_matmul_flops(dtype: str = "float32", size: int = 2048, repeats: int = 5) -> float:
  """The best FLOP/s of a `size`² matmul in `dtype` on the default device (2·size³ FLOPs)."""
  a = jax.random.normal(jax.random.key(0), (size, size), dtype)
  b = jax.random.normal(jax.random.key(1), (size, size), dtype)
  matmul = jax.jit(jnp.matmul)
  matmul(a, b).block_until_ready()
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    matmul(a, b).block_until_ready()
    best = min(best, time.perf_counter() - start)
  return 2.0 * size**3 / best

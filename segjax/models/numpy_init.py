"""Random variables drawn by numpy instead of a model's own initialisers.

Compiling `model.init` costs seconds for a tiny model and minutes for a ViT-H on a CPU (threefry
kernels, docs/architecture.md), where latency benchmarks and tests need weights of the right
shapes, not of the right distribution.
"""

from collections.abc import Callable
from typing import Any

import jax
import numpy as np


def numpy_variables(init: Callable[[], Any], seed: int = 0) -> Any:
  """The variables `init()` would return (only its shapes are traced), drawn by numpy: norm scales
  1, biases 0, other arrays N(0, 1/fan_in) with fan_in all axes but the last, float32."""
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    name = path[-1].key
    if name in ("scale", "bias"):
      return np.full(leaf.shape, float(name == "scale"), np.float32)
    std = 1 / np.sqrt(np.prod(leaf.shape[:-1])) if leaf.ndim > 1 else 1.0
    return rng.normal(0, std, leaf.shape).astype(np.float32)

  return jax.tree_util.tree_map_with_path(draw, jax.eval_shape(init))

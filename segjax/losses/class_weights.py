"""Per-class loss weights from pixel counts, for `cross_entropy(class_weights=...)`."""

import jax
import jax.numpy as jnp

CLASS_WEIGHT_METHODS = ("inverse", "median", "enet")


def class_weights_from_counts(counts: jax.Array, method: str = "inverse") -> jax.Array:
  r"""Class weights from per-class pixel counts.

  With frequencies $f_c = n_c / \sum_k n_k$ and `K` the classes with $n_c > 0$:

  - `"inverse"`: $w_c \propto 1 / f_c$, scaled so that the weights of `K` average to 1.
  - `"median"`: median-frequency balancing, $w_c = \operatorname{median}_{k \in K} f_k / f_c$
    (Eigen and Fergus, "Predicting Depth, Surface Normals and Semantic Labels with a Common
    Multi-Scale Convolutional Architecture", ICCV 2015).
  - `"enet"`: $w_c = 1 / \ln(1.02 + f_c)$, unnormalised, bounded by about 50.5 (Paszke et al.,
    "ENet: A Deep Neural Network Architecture for Real-Time Semantic Segmentation", 2016).

  Classes with $n_c = 0$ get weight 0 under every method (they never occur as targets). Works on
  NumPy or JAX arrays, also under `jit`.

  Args:
    counts: int or float [C] pixel counts per class.
    method: one of `CLASS_WEIGHT_METHODS`.

  Returns:
    f32[C] weights.
  """
  if method not in CLASS_WEIGHT_METHODS:
    raise ValueError(f"Unknown class-weight method {method!r}; known: {CLASS_WEIGHT_METHODS}")
  counts = jnp.asarray(counts, jnp.float32)
  present = counts > 0
  total = jnp.sum(counts)
  freq = counts / jnp.where(total > 0, total, 1.0)
  # Absent classes get frequency 1 in the divisions below; their weight is zeroed at the end.
  safe_freq = jnp.where(present, freq, 1.0)
  if method == "inverse":
    inverse = jnp.where(present, 1.0 / safe_freq, 0.0)
    num_present = jnp.sum(present)
    weights = inverse * num_present / jnp.where(num_present > 0, jnp.sum(inverse), 1.0)
  elif method == "median":
    weights = jnp.nanmedian(jnp.where(present, freq, jnp.nan)) / safe_freq
  else:
    weights = 1.0 / jnp.log(1.02 + freq)
  return jnp.where(present, weights, 0.0).astype(jnp.float32)

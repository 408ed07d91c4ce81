"""Panoptic-DeepLab's losses (Cheng et al., 2020, as detectron2 trains it): cross-entropy over
the hardest pixels, weighted MSE on the centre heatmap, weighted L1 on the offsets."""

import math

import jax
import jax.numpy as jnp

from segjax.losses.semantic import _prepare, _safe_div


def hard_pixel_cross_entropy(
  logits: jax.Array,
  labels: jax.Array,
  *,
  pixel_weights: jax.Array | None = None,
  top_fraction: float = 0.2,
  ignore_index: int = 255,
) -> jax.Array:
  """Mean of the largest `top_fraction` of the per-pixel (weighted) cross-entropies.

  "Hard pixel mining" (DeepLab's bootstrapped CE): k = floor(top_fraction * B*H*W) over the whole
  batch, void pixels counting as losses of 0 (detectron2's `DeepLabCE`), so k is static.

  Args:
    logits: f32[B,H,W,C].
    labels: i32[B,H,W], `ignore_index` for void.
    pixel_weights: f32[B,H,W] multiplying each pixel's loss (Panoptic-DeepLab weighs pixels of
      small instances 3x), or None.
    top_fraction: in (0, 1]; 1 averages over every pixel.

  Returns:
    f32[].
  """
  if not 0 < top_fraction <= 1:
    raise ValueError(f"top_fraction={top_fraction} is not in (0, 1].")
  logits, valid, onehot = _prepare(logits, labels, ignore_index)
  nll = -jnp.sum(onehot * jax.nn.log_softmax(logits, axis=-1), axis=-1)
  if pixel_weights is not None:
    nll = nll * pixel_weights
  losses = jnp.where(valid, nll, 0.0).reshape(-1)
  k = max(1, math.floor(top_fraction * losses.size))
  if k < losses.size:
    losses = jax.lax.top_k(losses, k)[0]
  return jnp.mean(losses)


def center_loss(center: jax.Array, target: jax.Array, weights: jax.Array) -> jax.Array:
  """Weighted MSE on the heatmap: `center`, `target`, `weights`: f32[B,H,W] -> f32[] (sum of
  weighted squared errors over the weight sum; 0 without weight)."""
  return _safe_div(jnp.sum(weights * (center - target) ** 2), jnp.sum(weights))


def offset_loss(offset: jax.Array, target: jax.Array, weights: jax.Array) -> jax.Array:
  """Weighted L1 on offsets: `offset`, `target`: f32[B,H,W,2], `weights`: f32[B,H,W] -> f32[]
  (both channels' absolute errors summed per pixel, averaged over the weight sum)."""
  return _safe_div(jnp.sum(weights[..., None] * jnp.abs(offset - target)), jnp.sum(weights))

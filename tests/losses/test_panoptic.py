"""Panoptic-DeepLab's losses against plain numpy computations of their definitions."""

import jax
import numpy as np
import pytest

from segjax.losses.panoptic import center_loss, hard_pixel_cross_entropy, offset_loss


def _pixel_ce(logits, labels):
  """-log softmax(logits)[label] per pixel, in float64."""
  z = logits.astype(np.float64)
  log_probs = z - z.max(-1, keepdims=True)
  log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
  safe = np.where(labels == 255, 0, labels)
  return -np.take_along_axis(log_probs, safe[..., None], -1)[..., 0]


@pytest.mark.parametrize("fraction", [0.2, 0.5, 1.0])
def test_hard_pixel_cross_entropy_averages_the_largest_weighted_losses(fraction):
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(2, 5, 6, 4)).astype(np.float32) * 3
  labels = rng.integers(0, 4, (2, 5, 6))
  labels[0, :2] = 255
  weights = rng.choice([1.0, 3.0], size=(2, 5, 6)).astype(np.float32)
  losses = np.where(labels == 255, 0.0, _pixel_ce(logits, labels) * weights).ravel()
  k = int(fraction * losses.size)  # 60 pixels: 12, 30, 60
  expected = np.sort(losses)[::-1][:k].mean()
  got = hard_pixel_cross_entropy(
    logits, labels, pixel_weights=weights, top_fraction=fraction, ignore_index=255
  )
  np.testing.assert_allclose(float(got), expected, rtol=1e-5)


def test_hard_pixel_cross_entropy_gives_void_no_gradient_and_checks_the_fraction():
  logits = np.zeros((1, 2, 2, 3), np.float32)
  labels = np.array([[[0, 255], [1, 2]]])
  grad = jax.grad(lambda z: hard_pixel_cross_entropy(z, labels, top_fraction=0.5))(logits)
  assert np.all(np.asarray(grad)[0, 0, 1] == 0)
  with pytest.raises(ValueError, match="top_fraction=0"):
    hard_pixel_cross_entropy(logits, labels, top_fraction=0)


def test_center_and_offset_losses_are_weighted_means():
  center = np.array([[[0.5, 1.0], [0.0, 0.2]]], np.float32)
  target = np.array([[[1.0, 1.0], [0.0, 0.0]]], np.float32)
  weights = np.array([[[1.0, 1.0], [0.0, 1.0]]], np.float32)
  # Squared errors 0.25, 0, (0 unweighted), 0.04 over a weight sum of 3.
  np.testing.assert_allclose(float(center_loss(center, target, weights)), 0.29 / 3, rtol=1e-6)
  offset = np.array([[[[1.0, -2.0], [0.0, 0.0]], [[5.0, 5.0], [0.5, 0.5]]]], np.float32)
  offset_target = np.zeros_like(offset)
  # |dy| + |dx| per weighted pixel: 3 + 0 + 1 over 3 pixels (the 10 is unweighted).
  np.testing.assert_allclose(float(offset_loss(offset, offset_target, weights)), 4.0 / 3, rtol=1e-6)
  assert float(center_loss(center, target, np.zeros_like(weights))) == 0.0

"""Properties every segmentation loss must have: void handling, stability, symmetries, transforms.

All losses are evaluated together in one compiled function per input dtype (and one vmapped), and
its results are cached per input set: the suite compiles three times in all, as compiling dominates
its run time on CPU.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from segjax.losses import boundary, semantic

IGNORE = 255
SHAPE = (2, 8, 8, 4)  # B, H, W, C

# Every loss as f(logits, labels, distance_maps); only boundary_loss reads the maps.
LOSSES = {
  "cross_entropy": lambda z, y, m: semantic.cross_entropy(z, y),
  "cross_entropy_weighted_smoothed": lambda z, y, m: semantic.cross_entropy(
    z, y, class_weights=jnp.array([0.5, 1.0, 2.0, 4.0]), label_smoothing=0.1
  ),
  "dice": lambda z, y, m: semantic.dice_loss(z, y),
  "dice_per_image_present": lambda z, y, m: semantic.dice_loss(
    z, y, per_image=True, classes="present"
  ),
  "focal": lambda z, y, m: semantic.focal_loss(z, y),
  "focal_fractional_gamma_alpha": lambda z, y, m: semantic.focal_loss(
    z, y, gamma=0.5, alpha=jnp.array([0.25, 0.5, 1.0, 2.0])
  ),
  "tversky": lambda z, y, m: semantic.tversky_loss(z, y, alpha=0.7, beta=0.3),
  "focal_tversky": lambda z, y, m: semantic.focal_tversky_loss(z, y),
  "lovasz": lambda z, y, m: semantic.lovasz_softmax(z, y),
  "lovasz_per_image_all": lambda z, y, m: semantic.lovasz_softmax(
    z, y, per_image=True, classes="all"
  ),
  "boundary_weighted_cross_entropy": lambda z, y, m: boundary.boundary_weighted_cross_entropy(
    z, y, width=2
  ),
  "boundary_loss": lambda z, y, m: boundary.boundary_loss(z, y, distance_maps=m),
}
NAMES = list(LOSSES)
# Class weights break the symmetry between classes.
PERMUTATION_INVARIANT = [
  n for n in NAMES if n not in ("cross_entropy_weighted_smoothed", "focal_fractional_gamma_alpha")
]
# Label smoothing penalises confidence; boundary_loss is minimal, not zero, at a perfect prediction
# (tested in test_boundary.py).
ZERO_AT_PERFECT = [
  n for n in NAMES if n not in ("cross_entropy_weighted_smoothed", "boundary_loss")
]


def _all_value_and_grad(logits, labels, maps):
  return {name: jax.value_and_grad(f)(logits, labels, maps) for name, f in LOSSES.items()}


_evaluate = jax.jit(_all_value_and_grad)


def _maps(labels):
  return boundary.signed_distance_maps(labels, SHAPE[-1], ignore_index=IGNORE)


def _base(seed=0):
  rng = np.random.default_rng(seed)
  logits = (2.0 * rng.standard_normal(SHAPE)).astype(np.float32)
  labels = rng.integers(0, SHAPE[-1], SHAPE[:-1]).astype(np.int32)
  labels[rng.random(SHAPE[:-1]) < 0.2] = IGNORE
  return logits, labels


def _onehot(labels):
  return (
    np.eye(SHAPE[-1], dtype=np.float32)[np.where(labels == IGNORE, 0, labels)]
    * (labels != IGNORE)[..., None]
  )


def _inputs(kind):
  """(logits, labels) of a named input set, all of shape SHAPE."""
  logits, labels = _base()
  rng = np.random.default_rng(1)
  if kind == "all_void":
    return logits, np.full_like(labels, IGNORE)
  if kind == "extreme":  # magnitudes ~1e4: confident right (p_y = 1 exactly) and wrong pixels
    return (1e4 * rng.standard_normal(SHAPE)).astype(np.float32), labels
  if kind == "extreme_perfect":  # ±1e4, all right: 1 - p_y and 1 - TI are exactly 0
    return 1e4 * (2.0 * _onehot(labels) - 1.0), labels
  if kind == "perfect":
    return 20.0 * _onehot(labels), labels
  if kind == "permuted":
    perm = np.array([2, 0, 3, 1])  # new class k is old class perm[k]
    relabel = np.argsort(perm)[np.where(labels == IGNORE, 0, labels)]
    return logits[..., perm], np.where(labels == IGNORE, IGNORE, relabel)
  if kind == "hflip":
    return logits[:, :, ::-1], labels[:, :, ::-1]
  if kind == "vflip":
    return logits[:, ::-1], labels[:, ::-1]
  assert kind == "base", kind
  return logits, labels


@functools.cache
def _results(kind, dtype="float32"):
  logits, labels = _inputs(kind)
  logits = np.ascontiguousarray(logits).astype(dtype)
  labels = np.ascontiguousarray(labels)
  out = _evaluate(logits, labels, _maps(labels))
  return {name: (float(v), np.asarray(g, np.float32)) for name, (v, g) in out.items()}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", ["base", "extreme"])
def test_void_pixels_get_exactly_zero_gradient(name, kind):
  _, labels = _inputs(kind)
  _, grad = _results(kind)[name]
  assert np.all(grad[labels == IGNORE] == 0.0)
  if kind == "base":  # saturated softmax may leave every gradient at 0 for extreme logits
    assert np.any(grad[labels != IGNORE] != 0.0)


@pytest.mark.parametrize("name", NAMES)
def test_void_logits_do_not_change_the_value(name):
  logits, labels = _base()
  noisy = np.where((labels == IGNORE)[..., None], 1e3 * logits, logits)
  value = float(_evaluate(noisy, labels, _maps(labels))[name][0])
  np.testing.assert_allclose(value, _results("base")[name][0], rtol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_batch_without_valid_pixels_is_exactly_zero(name):
  value, grad = _results("all_void")[name]
  assert value == 0.0
  assert np.all(grad == 0.0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("kind", ["extreme", "extreme_perfect"])
def test_extreme_logits_give_finite_value_and_gradient(name, dtype, kind):
  value, grad = _results(kind, dtype)[name]
  assert np.isfinite(value)
  assert np.all(np.isfinite(grad))


@pytest.mark.parametrize("name", NAMES)
def test_bfloat16_logits_are_promoted_to_float32(name):
  logits, labels = _base()
  rounded = logits.astype(jnp.bfloat16).astype(np.float32)
  value = float(_evaluate(rounded, labels, _maps(labels))[name][0])
  np.testing.assert_allclose(_results("base", "bfloat16")[name][0], value, rtol=1e-6)


@pytest.mark.parametrize("name", ZERO_AT_PERFECT)
def test_perfect_logits_give_near_zero(name):
  value, _ = _results("perfect")[name]
  assert 0.0 <= value < 1e-4
  assert _results("extreme_perfect")[name][0] < 1e-4


@pytest.mark.parametrize("name", PERMUTATION_INVARIANT)
def test_permuting_classes_with_labels_leaves_the_value(name):
  np.testing.assert_allclose(_results("permuted")[name][0], _results("base")[name][0], rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("flip", ["hflip", "vflip"])
def test_flipping_image_and_labels_leaves_the_value(name, flip):
  np.testing.assert_allclose(_results(flip)[name][0], _results("base")[name][0], rtol=1e-5)


@functools.cache
def _stacked():
  """Three batches stacked on a new leading axis, and the losses vmapped over it."""
  batches = [_base(seed) for seed in range(3)]
  logits = np.stack([z for z, _ in batches])
  labels = np.stack([y for _, y in batches])
  maps = np.stack([_maps(y) for y in labels])
  # Values only: vmapping the gradients too would double the compile time of the suite.
  values = jax.jit(jax.vmap(lambda z, y, m: {n: f(z, y, m) for n, f in LOSSES.items()}))
  return logits, labels, maps, values(logits, labels, maps)


@pytest.mark.parametrize("name", NAMES)
def test_vmap_over_stacked_batches_equals_a_loop(name):
  logits, labels, maps, values = _stacked()
  for i in range(len(logits)):
    value, _ = _evaluate(logits[i], labels[i], maps[i])[name]
    np.testing.assert_allclose(values[name][i], value, rtol=1e-5, atol=1e-7)

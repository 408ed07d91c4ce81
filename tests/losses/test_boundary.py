"""segjax.losses.boundary against NumPy/SciPy references and hand-worked cases."""

import functools
import math
import time

import jax
import numpy as np
import pytest
from scipy import ndimage

from segjax.losses import boundary

IGNORE = 255
RTOL, ATOL = 1e-5, 1e-6
SHAPE = (2, 16, 16, 4)


def _blocky_batch(seed=0, shape=SHAPE, block=4, void_frac=0.1):
  """Piecewise-constant labels (blocks of `block` pixels) with scattered void, and logits."""
  rng = np.random.default_rng(seed)
  b, h, w, c = shape
  coarse = rng.integers(0, c, (b, h // block, w // block))
  labels = np.repeat(np.repeat(coarse, block, 1), block, 2).astype(np.int32)
  labels[rng.random(labels.shape) < void_frac] = IGNORE
  return (2.0 * rng.standard_normal(shape)).astype(np.float32), labels


# ----------------------------------------------------------------------------- NumPy references


def ref_band(labels, width):
  """Boundary pixels by explicit 4-neighbour loops; band by SciPy's chessboard distance."""
  band = np.zeros(labels.shape, bool)
  for i, image in enumerate(labels):
    h, w = image.shape
    edge = np.zeros((h, w), bool)
    for r in range(h):
      for c in range(w):
        for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
          if 0 <= rr < h and 0 <= cc < w:
            a, b = image[r, c], image[rr, cc]
            edge[r, c] |= a != IGNORE and b != IGNORE and a != b
    # Chebyshev distance to the nearest boundary pixel; -1 everywhere if there is none.
    dist = ndimage.distance_transform_cdt(~edge, metric="chessboard")
    band[i] = (dist >= 0) & (dist <= width - 1)
  return band


def _log_softmax(z):
  z = np.asarray(z, np.float64)
  z = z - z.max(-1, keepdims=True)
  return z - np.log(np.exp(z).sum(-1, keepdims=True))


def ref_boundary_weighted_ce(logits, labels, width, boundary_weight):
  valid = labels != IGNORE
  weight = (1.0 + boundary_weight * ref_band(labels, width))[valid]
  y = labels[valid]
  nll = -_log_softmax(logits[valid])[np.arange(len(y)), y]
  return (weight * nll).sum() / weight.sum()


def ref_one_hot2dist(image, num_classes):
  """LIVIA-ETS/boundary-loss `one_hot2dist` on one image, void pixels in no class; a class that
  covers the whole image (no boundary, where the original is undefined) gets zeros."""
  res = np.zeros((num_classes, *image.shape))
  for k in range(num_classes):
    posmask = image == k
    if posmask.any() and not posmask.all():
      negmask = ~posmask
      res[k] = (
        ndimage.distance_transform_edt(negmask) * negmask
        - (ndimage.distance_transform_edt(posmask) - 1) * posmask
      )
  return np.moveaxis(res, 0, -1)


def ref_boundary_loss(logits, maps, labels):
  valid = labels != IGNORE
  p = np.exp(_log_softmax(logits[valid]))
  return (p * maps[valid]).mean()


# ------------------------------------------------------------------------ against the references
CASES = {
  f"w{width}_x{weight:g}": {"width": width, "boundary_weight": weight}
  for width, weight in ((1, 5.0), (2, 5.0), (3, 5.0), (3, 0.5))
}


@jax.jit
def _evaluate(logits, labels, maps):
  """Every case, the bands and boundary_loss from one compile."""
  out = {n: boundary.boundary_weighted_cross_entropy(logits, labels, **o) for n, o in CASES.items()}
  out |= {f"band{w}": boundary.boundary_band(labels, width=w) for w in (1, 2, 3)}
  return out | {"boundary_loss": boundary.boundary_loss(logits, labels, distance_maps=maps)}


@functools.cache
def _values(seed):
  logits, labels = _blocky_batch(seed)
  maps = boundary.signed_distance_maps(labels, SHAPE[-1])
  return logits, labels, maps, _evaluate(logits, labels, maps)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("width", [1, 2, 3])
def test_band_matches_reference(seed, width):
  _, labels, _, values = _values(seed)
  np.testing.assert_array_equal(values[f"band{width}"], ref_band(labels, width))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", list(CASES))
def test_boundary_weighted_ce_matches_reference(seed, name):
  logits, labels, _, values = _values(seed)
  expected = ref_boundary_weighted_ce(logits, labels, **CASES[name])
  np.testing.assert_allclose(values[name], expected, RTOL, ATOL)


@pytest.mark.parametrize("seed", [0, 1])
def test_signed_distance_maps_match_official_one_hot2dist(seed):
  _, labels, maps, _ = _values(seed)
  expected = np.stack([ref_one_hot2dist(image, SHAPE[-1]) for image in labels])
  np.testing.assert_allclose(maps, expected, RTOL, ATOL)


def test_signed_distance_maps_of_a_class_covering_the_image_are_zero():
  labels = np.zeros((5, 6), np.uint8)
  labels[2, 3] = 1
  maps = boundary.signed_distance_maps(labels, 3)
  np.testing.assert_allclose(maps, ref_one_hot2dist(labels, 3))
  assert np.all(boundary.signed_distance_maps(np.zeros((5, 6), np.uint8), 3) == 0.0)


def test_signed_distance_maps_shapes_and_dtype():
  _, labels = _blocky_batch(2)
  batch = boundary.signed_distance_maps(labels.astype(np.uint8), SHAPE[-1])
  assert batch.shape == SHAPE and batch.dtype == np.float32
  single = boundary.signed_distance_maps(labels[1], SHAPE[-1])
  assert single.shape == SHAPE[1:]
  np.testing.assert_array_equal(single, batch[1])


@pytest.mark.parametrize("seed", [0, 1])
def test_boundary_loss_matches_reference(seed):
  logits, labels, maps, values = _values(seed)
  expected = ref_boundary_loss(logits, maps, labels)
  np.testing.assert_allclose(values["boundary_loss"], expected, RTOL, ATOL)


def test_boundary_loss_is_minimal_at_a_perfect_prediction():
  # φ_y ≤ 0 inside the true class and φ_c ≥ 0 for every other class, so the minimum of
  # Σ_c p_c φ_c over probability vectors is φ_y, reached by p = onehot(y).
  _, labels, maps, values = _values(0)
  valid = labels != IGNORE
  perfect = 30.0 * np.eye(SHAPE[-1], dtype=np.float32)[np.where(valid, labels, 0)]
  got = jax.jit(boundary.boundary_loss)(perfect, labels, distance_maps=maps)
  minimum = np.take_along_axis(maps, np.where(valid, labels, 0)[..., None], -1)[valid].mean()
  np.testing.assert_allclose(got, minimum / SHAPE[-1], RTOL, 1e-5)
  assert minimum < 0.0 < values["boundary_loss"] - got


# ---------------------------------------------------------------------------- hand-worked cases


def test_band_by_hand():
  # One row 0 0 0 0 1 1 1: the boundary pixels are columns 3 and 4 (neighbours 0 | 1); width 2
  # adds one pixel on each side (columns 2 and 5); width 1 is the boundary pixels alone.
  labels = np.array([[[0, 0, 0, 0, 1, 1, 1]]])
  expected = {1: [0, 0, 0, 1, 1, 0, 0], 2: [0, 0, 1, 1, 1, 1, 0], 3: [0, 1, 1, 1, 1, 1, 1]}
  bands = jax.jit(lambda y: {w: boundary.boundary_band(y, width=w) for w in expected})(labels)
  for width, row in expected.items():
    np.testing.assert_array_equal(bands[width], np.array([[row]], bool))
  # A void pixel between two classes creates no boundary.
  labels = np.array([[[0, 0, IGNORE, 1, 1, 1, 1]]])
  assert not np.any(jax.jit(functools.partial(boundary.boundary_band, width=3))(labels))


def test_band_width_must_be_positive():
  with pytest.raises(ValueError, match="width must be at least 1"):
    boundary.boundary_band(np.zeros((1, 3, 3), np.int32), width=0)


def test_boundary_weighted_ce_by_hand():
  # One row, labels 0 0 1, C = 2, width 1, λ = 5: pixels 2 and 3 are boundary pixels (weight 6),
  # pixel 1 is not (weight 1). Logits (0, 0) → -ln(1/2) = ln 2; (0, ln 3) with label 0 →
  # -ln(1/4) = ln 4; (0, ln 3) with label 1 → -ln(3/4) = ln(4/3).
  ln3 = math.log(3.0)
  logits = np.array([[[[0.0, 0.0], [0.0, ln3], [0.0, ln3]]]], np.float32)
  labels = np.array([[[0, 0, 1]]])
  loss = functools.partial(boundary.boundary_weighted_cross_entropy, width=1, boundary_weight=5.0)
  got = jax.jit(loss)(logits, labels)
  expected = (math.log(2) + 6 * math.log(4) + 6 * math.log(4 / 3)) / 13
  np.testing.assert_allclose(got, expected, RTOL)


def test_signed_distance_maps_by_hand():
  # One row 0 0 0 1 1, C = 3. Class 0: inside, distances to the nearest pixel outside are
  # 3, 2, 1 → -(d - 1) = -2, -1, 0; outside, distances to the class are 1, 2.
  # Class 1: outside 3, 2, 1; inside d = 1, 2 → 0, -1. Class 2 is absent: zeros.
  maps = boundary.signed_distance_maps(np.array([[0, 0, 0, 1, 1]], np.uint8), 3)
  expected = np.array([[[-2, 3, 0], [-1, 2, 0], [0, 1, 0], [1, 0, 0], [2, -1, 0]]], np.float32)
  np.testing.assert_array_equal(maps, expected)
  # Void pixels are outside every class: the void pixel is 1 from class 0 and 2 from class 1.
  maps = boundary.signed_distance_maps(np.array([[0, IGNORE, 1, 1]], np.uint8), 2)
  expected = np.array([[[0, 2], [1, 1], [2, 0], [3, -1]]], np.float32)
  np.testing.assert_array_equal(maps, expected)


def test_boundary_loss_by_hand():
  # p = (1/4, 3/4) at both pixels; φ = (-1, 2) and (3, 0); the void pixel is left out.
  # Mean over 2 pixels × 2 classes: (-1/4 + 6/4 + 3/4 + 0) / 4 = 2/4 = 1/2.
  ln3 = math.log(3.0)
  logits = np.array([[[[0.0, ln3], [0.0, ln3], [0.0, 0.0]]]], np.float32)
  maps = np.array([[[[-1.0, 2.0], [3.0, 0.0], [100.0, 100.0]]]], np.float32)
  labels = np.array([[[0, 1, IGNORE]]])
  np.testing.assert_allclose(
    jax.jit(boundary.boundary_loss)(logits, labels, distance_maps=maps), 0.5, RTOL
  )


def test_signed_distance_maps_are_fast_enough_for_the_input_pipeline():
  # 128×128 street-like scenes with 7 classes: two large regions, boxes and void speckle.
  rng = np.random.default_rng(0)
  scenes = []
  for _ in range(8):
    scene = np.zeros((128, 128), np.uint8)
    scene[64:] = 1
    for _ in range(8):
      (y, x), (h, w) = rng.integers(0, 128, 2), rng.integers(4, 40, 2)
      scene[y : y + h, x : x + w] = rng.integers(2, 7)
    scene[rng.random(scene.shape) < 0.02] = IGNORE
    scenes.append(scene)
  start = time.perf_counter()
  for scene in scenes:
    boundary.signed_distance_maps(scene, 7)
  per_image = (time.perf_counter() - start) / len(scenes)
  assert per_image < 0.1, f"{per_image * 1e3:.1f} ms per image"

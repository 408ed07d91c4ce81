"""Panoptic-DeepLab targets: hand-checked values on tiny maps, and a per-pixel transcription of the
definitions on a random one."""

import numpy as np
import pytest

from segjax.models.panoptic.targets import panoptic_deeplab_targets

THINGS = (1, 2)
VOID = 255_000


def _map(shape=(20, 20), stuff=0):
  return np.full(shape, stuff * 1000, np.int32)


def _gaussian(dy, dx, sigma):
  return np.exp(-(dy**2 + dx**2) / (2 * sigma**2))


def test_square_instance_centre_heatmap_and_offsets():
  panoptic = _map()
  panoptic[2:7, 3:8] = 1001  # 5×5, centre (4, 5)
  out = panoptic_deeplab_targets(panoptic, things=THINGS, sigma=2.0)
  center, offset = out["center"], out["offset"]
  assert center[4, 5] == 1.0
  assert center.max() == 1.0 and np.argmax(center) == 4 * 20 + 5
  np.testing.assert_allclose(center[5, 7], np.exp(-5 / 8), rtol=1e-6)  # dy 1, dx 2, 2σ² = 8
  np.testing.assert_allclose(center[1, 4], np.exp(-10 / 8), rtol=1e-6)
  # The window reaches 3σ+1 = 7 pixels from the centre.
  np.testing.assert_allclose(center[4, 12], np.exp(-49 / 8), rtol=1e-6)
  np.testing.assert_allclose(center[11, 12], np.exp(-98 / 8), rtol=1e-6)
  assert center[4, 13] == 0 and center[12, 5] == 0 and center[11, 13] == 0
  # (dy, dx) from the corners to the centre.
  np.testing.assert_array_equal(offset[2, 3], [2, 2])
  np.testing.assert_array_equal(offset[2, 7], [2, -2])
  np.testing.assert_array_equal(offset[6, 3], [-2, 2])
  np.testing.assert_array_equal(offset[6, 7], [-2, -2])
  np.testing.assert_array_equal(offset[4, 5], [0, 0])
  assert not offset[panoptic == 0].any()


def test_outputs_dtypes_and_shapes():
  panoptic = _map((6, 9))
  panoptic[1:3, 1:3] = 2001
  out = panoptic_deeplab_targets(panoptic, things=THINGS)
  expected = {
    "semantic": np.uint8,
    "center": np.float32,
    "offset": np.float32,
    "semantic_weights": np.float32,
    "center_weights": np.float32,
    "offset_weights": np.float32,
  }
  assert {k: v.dtype for k, v in out.items()} == expected
  assert out["offset"].shape == (6, 9, 2)
  assert all(v.shape == (6, 9) for k, v in out.items() if k != "offset")


def test_centre_of_mass_of_an_l_shape():
  panoptic = _map()
  # (3,4) (4,4) (5,4) (5,5) (5,6): mean y = 22/5 = 4.4, mean x = 23/5 = 4.6.
  panoptic[3:6, 4] = 2007
  panoptic[5, 5:7] = 2007
  out = panoptic_deeplab_targets(panoptic, things=THINGS, sigma=1.0)
  # The peak is at the rounded centre (4, 5), which is not on the instance.
  assert np.argmax(out["center"]) == 4 * 20 + 5 and out["center"][4, 5] == 1.0
  # The offsets point at the unrounded centre.
  offset = out["offset"]
  np.testing.assert_allclose(offset[3, 4], [1.4, 0.6], atol=1e-6)
  np.testing.assert_allclose(offset[5, 4], [-0.6, 0.6], atol=1e-6)
  np.testing.assert_allclose(offset[5, 6], [-0.6, -1.4], atol=1e-6)


@pytest.mark.parametrize("start, peak", [(0, 0), (1, 2), (2, 2), (3, 4)])
def test_centre_rounds_half_to_even(start, peak):
  # A 2×2 square's centre is at start + 0.5; the reference's `round` rounds half to even.
  panoptic = _map((8, 8))
  panoptic[start : start + 2, start : start + 2] = 1001
  center = panoptic_deeplab_targets(panoptic, things=THINGS, sigma=1.0)["center"]
  assert np.unravel_index(np.argmax(center), center.shape) == (peak, peak)


def test_overlapping_windows_take_the_max():
  panoptic = _map((11, 15))
  panoptic[5, 5] = 1001
  panoptic[5, 9] = 1002
  sigma = 2.0
  center = panoptic_deeplab_targets(panoptic, things=THINGS, sigma=sigma)["center"]
  np.testing.assert_allclose(center[5, 7], _gaussian(0, 2, sigma), rtol=1e-6)
  np.testing.assert_allclose(center[5, 8], _gaussian(0, 1, sigma), rtol=1e-6)  # not (0, 3)
  np.testing.assert_allclose(center[3, 6], _gaussian(2, 1, sigma), rtol=1e-6)  # not (2, 3)
  np.testing.assert_allclose(center[5, 0], _gaussian(0, 5, sigma), rtol=1e-6)
  np.testing.assert_allclose(center[5, 14], _gaussian(0, 5, sigma), rtol=1e-6)
  singles = []
  for instance in (1001, 1002):
    alone = np.where(panoptic == instance, instance, 0)
    singles.append(panoptic_deeplab_targets(alone, things=THINGS, sigma=sigma)["center"])
  np.testing.assert_array_equal(center, np.maximum(*singles))


def test_window_is_cut_at_the_image_border():
  panoptic = _map((5, 6))
  panoptic[0, 0] = 2001
  center = panoptic_deeplab_targets(panoptic, things=THINGS, sigma=3.0)["center"]
  y, x = np.mgrid[:5, :6]
  np.testing.assert_allclose(center, _gaussian(y, x, 3.0), rtol=1e-6)


def test_crowd_void_and_stuff():
  panoptic = _map((8, 10), stuff=3)
  panoptic[0:3, 0:3] = 1000  # crowd of class 1
  panoptic[5:8, 0:3] = VOID
  panoptic[4:7, 6:9] = 2001  # centre (5, 7)
  panoptic[0:2, 7:10] = 4005  # a stuff class with an instance id is stuff
  out = panoptic_deeplab_targets(panoptic, things=THINGS, small_instance_area=0)
  crowd, void, thing = panoptic == 1000, panoptic == VOID, panoptic == 2001
  stuff = ~(crowd | void | thing)
  semantic = np.full((8, 10), 3)
  semantic[crowd], semantic[void], semantic[thing], semantic[0:2, 7:10] = 1, 255, 2, 4
  np.testing.assert_array_equal(out["semantic"], semantic)
  # Only the instance has a centre and offsets.
  assert np.argmax(out["center"]) == 5 * 10 + 7 and out["center"].max() == 1.0
  assert not out["offset"][~thing].any() and out["offset"][thing].any()
  np.testing.assert_array_equal(out["offset_weights"], thing)
  np.testing.assert_array_equal(out["center_weights"], ~(crowd | void))
  np.testing.assert_array_equal(out["semantic_weights"], ~void)
  assert stuff.any()


def test_crowd_ignored_in_semantic():
  panoptic = _map((6, 6), stuff=3)
  panoptic[0:3, 0:3] = 1000
  out = panoptic_deeplab_targets(panoptic, things=THINGS, ignore_crowd_in_semantic=True)
  crowd = panoptic == 1000
  np.testing.assert_array_equal(out["semantic"], np.where(crowd, 255, 3))
  np.testing.assert_array_equal(out["semantic_weights"], ~crowd)
  np.testing.assert_array_equal(out["center_weights"], ~crowd)
  assert not out["center"].any() and not out["offset_weights"].any()


def test_small_instances_weigh_more_in_semantic():
  panoptic = _map((10, 12))
  panoptic[0:4, 0:4] = 1001  # 16 pixels
  panoptic[5:10, 0:3] = 1002  # 15
  panoptic[0:5, 6:9] = 2001  # 15
  panoptic[6:9, 6:12] = 1000  # crowd, 18: not an instance
  out = panoptic_deeplab_targets(
    panoptic, things=THINGS, small_instance_area=16, small_instance_weight=3.0
  )
  expected = np.where((panoptic == 1002) | (panoptic == 2001), 3.0, 1.0)
  np.testing.assert_array_equal(out["semantic_weights"], expected)


def _transcribed(panoptic, things, sigma, small_area, small_weight):
  """The targets straight from their definitions, one instance and pixel at a time."""
  h, w = panoptic.shape
  center = np.zeros((h, w))
  offset = np.zeros((h, w, 2))
  weights = np.ones((h, w))
  radius = int(3 * sigma + 1)
  y, x = np.mgrid[:h, :w]
  for segment in np.unique(panoptic):
    if segment // 1000 not in things or segment % 1000 == 0:
      continue
    mask = panoptic == segment
    cy, cx = y[mask].mean(), x[mask].mean()
    py, px = round(cy), round(cx)
    inside = (abs(y - py) <= radius) & (abs(x - px) <= radius)
    center = np.maximum(center, np.where(inside, _gaussian(y - py, x - px, sigma), 0))
    offset[mask] = np.stack([cy - y[mask], cx - x[mask]], -1)
    if mask.sum() < small_area:
      weights[mask] = small_weight
  weights[panoptic // 1000 == 255] = 0
  return center, offset, weights


def test_matches_the_definitions_on_a_random_map():
  rng = np.random.default_rng(0)
  h, w = 48, 64
  panoptic = np.where(np.arange(h)[:, None] < h // 2, 3000, 4000) + np.zeros((1, w), np.int32)
  for instance in range(1, 25):
    y, x = rng.integers(0, h - 4), rng.integers(0, w - 4)
    dy, dx = rng.integers(1, 15, 2)
    panoptic[y : y + dy, x : x + dx] = rng.choice(THINGS) * 1000 + instance
  panoptic[rng.random((h, w)) < 0.05] = VOID
  out = panoptic_deeplab_targets(
    panoptic, things=THINGS, sigma=2.5, small_instance_area=30, small_instance_weight=2.0
  )
  center, offset, weights = _transcribed(panoptic, THINGS, 2.5, 30, 2.0)
  np.testing.assert_allclose(out["center"], center, rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(out["offset"], offset, atol=1e-5)
  np.testing.assert_array_equal(out["semantic_weights"], weights)
  np.testing.assert_array_equal(out["semantic"], np.minimum(panoptic // 1000, 255))

"""Tests for segjax.metrics.boundary against a numpy/scipy transcription of the reference."""

import warnings

import jax
import numpy as np
import pytest
from scipy import ndimage

from segjax.metrics.boundary import (
  boundary_confusion_stats,
  boundary_dilation,
  boundary_iou_scores,
  mask_to_boundary,
)
from segjax.metrics.semantic import confusion_matrix, semantic_scores

IGNORE = 255


def reference_mask_to_boundary(mask, dilation_ratio=0.02):
  """bowenc0221/boundary-iou-api `mask_to_boundary`, line by line, with cv2 replaced by numpy/scipy.

  cv2.copyMakeBorder(..., BORDER_CONSTANT, value=0) -> np.pad with zeros. cv2.erode's default
  border value for erosion is +inf (the border never erodes) -> binary_erosion(border_value=1).
  """
  h, w = mask.shape
  img_diag = np.sqrt(h**2 + w**2)
  dilation = int(round(dilation_ratio * img_diag))  # noqa: RUF046 (verbatim)
  if dilation < 1:
    dilation = 1
  new_mask = np.pad(mask.astype(np.uint8), 1, constant_values=0)
  kernel = np.ones((3, 3), dtype=np.uint8)
  new_mask_erode = ndimage.binary_erosion(
    new_mask, structure=kernel, iterations=dilation, border_value=1
  ).astype(np.uint8)
  mask_erode = new_mask_erode[1 : h + 1, 1 : w + 1]
  return mask.astype(np.uint8) - mask_erode


def reference_stats(pred, labels, num_classes, dilation_ratio):
  """Per-class boundary intersection/union, one reference erosion per class and image."""
  inter, union = np.zeros(num_classes, np.int64), np.zeros(num_classes, np.int64)
  for p, g in zip(pred, labels, strict=True):
    valid = g != IGNORE
    for c in range(num_classes):
      bg = reference_mask_to_boundary((g == c) & valid, dilation_ratio).astype(bool)
      bp = reference_mask_to_boundary((p == c) & valid, dilation_ratio).astype(bool)
      inter[c] += (bg & bp & valid).sum()
      union[c] += ((bg | bp) & valid).sum()
  return inter, union


def blob_class_map(rng, shape, num_classes, smooth=3.0):
  """i32[...,H,W] class map of smooth blobs (argmax of blurred noise), touching the image border."""
  noise = rng.normal(size=(num_classes, *shape))
  sigma = (0,) + (0,) * (len(shape) - 2) + (smooth, smooth)
  return np.argmax(ndimage.gaussian_filter(noise, sigma), axis=0).astype(np.int32)


@pytest.mark.parametrize("shape", [(32, 32), (64, 48)])
@pytest.mark.parametrize("dilation_ratio", [0.0, 0.02, 0.1, 0.3])
def test_mask_to_boundary_matches_reference(shape, dilation_ratio):
  masks = blob_class_map(np.random.default_rng(0), (6, *shape), 2) == 1
  masks[0] = True  # full image: only the image border is boundary
  masks[1] = False
  expected = np.stack([reference_mask_to_boundary(m, dilation_ratio) for m in masks])
  assert expected.any()
  got = mask_to_boundary(masks, dilation_ratio=dilation_ratio)
  np.testing.assert_array_equal(got, expected.astype(bool))


def test_one_pixel_ring_equals_background_outside():
  # The semantics the implementation relies on: the reference's 1-pixel zero ring plus cv2's
  # non-eroding border is the same as treating everything outside the image as background.
  masks = blob_class_map(np.random.default_rng(1), (4, 40, 40), 2, smooth=5.0) == 1
  for d, ratio in [(1, 0.02), (3, 0.05), (6, 0.1)]:
    assert boundary_dilation(40, 40, ratio) == d
    for m in masks:
      outside_zero = m & ~ndimage.binary_erosion(m, np.ones((3, 3)), iterations=d, border_value=0)
      np.testing.assert_array_equal(reference_mask_to_boundary(m, ratio), outside_zero)


def test_dilation_rounds_like_reference():
  # Python round is half-to-even, like the reference's round(np.float64): 0.5 * 5 = 2.5 -> 2.
  assert boundary_dilation(3, 4, 0.5) == 2
  assert boundary_dilation(3, 4, 0.7) == 4  # 3.5 -> 4
  assert boundary_dilation(512, 512, 0.02) == 14  # 0.02 * 724.08 = 14.48
  assert boundary_dilation(8, 8, 0.0) == 1


def test_hand_worked_square():
  # 8x8 image, 4x4 square at rows/cols 2..5, d = max(1, round(0.02 * 11.3)) = 1: the boundary is
  # the square minus its 2x2 core, a 16 - 4 = 12 pixel ring.
  mask = np.zeros((8, 8), bool)
  mask[2:6, 2:6] = True
  ring = mask.copy()
  ring[3:5, 3:5] = False
  boundary = np.asarray(mask_to_boundary(mask))
  np.testing.assert_array_equal(boundary, ring)
  assert boundary.sum() == 12
  # The full image erodes from the image border: its boundary is the 8*8 - 6*6 = 28 outer ring.
  assert np.asarray(mask_to_boundary(np.ones((8, 8), bool))).sum() == 28


@pytest.mark.parametrize(("shape", "dilation_ratio"), [((32, 32), 0.02), ((64, 48), 0.05)])
def test_stats_match_reference_per_class(shape, dilation_ratio):
  rng = np.random.default_rng(2)
  num_classes = 5  # the blobs use classes 0..3 only: class 4 is absent everywhere
  labels = blob_class_map(rng, (3, *shape), 4)
  labels[blob_class_map(rng, (3, *shape), 4) == 0] = IGNORE
  pred = np.where(rng.random(labels.shape) < 0.5, labels, blob_class_map(rng, (3, *shape), 4))
  pred = np.roll(pred, 1, axis=-1)
  inter, union = boundary_confusion_stats(
    pred, labels, num_classes, ignore_index=IGNORE, dilation_ratio=dilation_ratio
  )
  expected_inter, expected_union = reference_stats(pred, labels, num_classes, dilation_ratio)
  np.testing.assert_array_equal(inter, expected_inter)
  np.testing.assert_array_equal(union, expected_union)
  assert (expected_inter[:4] > 0).all() and expected_union[4] == 0

  scores = boundary_iou_scores(inter, union)
  expected_iou = expected_inter[:4] / expected_union[:4]
  np.testing.assert_allclose(scores["per_class_boundary_iou"][:4], expected_iou)
  assert np.isnan(scores["per_class_boundary_iou"][4])
  assert scores["boundary_iou"] == pytest.approx(expected_iou.mean())


def test_stats_additive_and_jittable():
  rng = np.random.default_rng(3)
  labels = blob_class_map(rng, (4, 24, 24), 3)
  pred = blob_class_map(rng, (4, 24, 24), 3)
  step = jax.jit(lambda p, g: boundary_confusion_stats(p, g, 3))
  whole = step(pred, labels)
  halves = [step(pred[i : i + 2], labels[i : i + 2]) for i in (0, 2)]
  for got, a, b in zip(whole, *halves, strict=True):
    np.testing.assert_array_equal(got, a + b)
  np.testing.assert_array_equal(
    boundary_confusion_stats(pred.astype(np.uint8), labels.astype(np.uint8), 3)[1], whole[1]
  )


def test_perfect_prediction_scores_one():
  rng = np.random.default_rng(4)
  labels = blob_class_map(rng, (2, 48, 48), 4)
  labels[:, :8] = IGNORE
  scores = boundary_iou_scores(*boundary_confusion_stats(labels, labels, 4))
  assert scores["boundary_iou"] == 1.0
  np.testing.assert_array_equal(scores["per_class_boundary_iou"], 1.0)


def test_predictions_inside_void_are_not_counted():
  rng = np.random.default_rng(5)
  labels = blob_class_map(rng, (2, 48, 48), 3)
  labels[:, 20:30, 10:40] = IGNORE
  pred = np.where(labels == IGNORE, rng.integers(0, 3, labels.shape), labels)
  inter, union = boundary_confusion_stats(pred, labels, 3)
  np.testing.assert_array_equal(inter, union)


def test_one_pixel_shift_hurts_boundary_iou_more_than_mask_iou():
  # A 64x64 square in a 128x128 image, predicted one pixel to the right (d = round(3.62) = 4).
  labels = np.zeros((1, 128, 128), np.int32)
  labels[0, 32:96, 32:96] = 1
  pred = np.roll(labels, 1, axis=-1)
  mask_iou = semantic_scores(confusion_matrix(pred, labels, 2))["per_class_iou"][1]
  boundary_iou = boundary_iou_scores(*boundary_confusion_stats(pred, labels, 2))
  boundary_iou = boundary_iou["per_class_boundary_iou"][1]
  assert mask_iou == pytest.approx(63 / 65)  # 64*63 / (64*65)
  assert boundary_iou < mask_iou - 0.1


def test_all_void_gives_zeros_and_nan():
  labels = np.full((1, 16, 16), IGNORE, np.int32)
  inter, union = boundary_confusion_stats(np.zeros_like(labels), labels, 3)
  np.testing.assert_array_equal(union, 0)
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    scores = boundary_iou_scores(inter, union)
  assert np.isnan(scores["boundary_iou"]) and np.isnan(scores["per_class_boundary_iou"]).all()

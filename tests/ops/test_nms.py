"""segjax.ops.nms against a plain greedy NMS in NumPy.

Tie rule on both sides: candidates are visited by score, descending, equal scores by index,
ascending (torchvision's stable descending sort).
"""

import functools

import jax
import numpy as np
import pytest

from segjax.ops.nms import batched_nms, nms

N = 64
SEEDS = (0, 1, 2, 3)


def ref_iou(a, b):
  iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
  ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
  inter = iw * ih
  area_a = max(a[2] - a[0], 0.0) * max(a[3] - a[1], 0.0)
  area_b = max(b[2] - b[0], 0.0) * max(b[3] - b[1], 0.0)
  union = area_a + area_b - inter
  return inter / union if union > 0 else 0.0


def ref_nms(boxes, scores, iou_threshold, valid=None):
  """Indices kept by greedy NMS, in visiting order."""
  boxes, scores = boxes.astype(np.float64).tolist(), scores.tolist()
  valid = [True] * len(scores) if valid is None else list(valid)
  candidates = [i for i in range(len(scores)) if valid[i] and scores[i] > -np.inf]
  candidates.sort(key=lambda i: (-scores[i], i))
  kept = []
  for i in candidates:
    if all(ref_iou(boxes[i], boxes[k]) <= iou_threshold for k in kept):
      kept.append(i)
  return kept


def ref_batched_nms(boxes, scores, classes, iou_threshold, valid=None):
  valid = np.ones(len(scores), bool) if valid is None else valid
  kept = []
  for c in np.unique(classes):
    members = np.flatnonzero(classes == c)
    sub = ref_nms(boxes[members], scores[members], iou_threshold, valid[members])
    kept += members[sub].tolist()
  return sorted(kept, key=lambda i: (-scores[i], i))


def random_case(seed, n=N):
  """Clustered boxes (so that NMS has work), some degenerate, tied scores, ~15% invalid."""
  rng = np.random.default_rng(seed)
  centres = rng.uniform(0, 100, (6, 2))[rng.integers(0, 6, n)] + rng.normal(0, 3, (n, 2))
  wh = rng.uniform(8, 30, (n, 2))
  wh[rng.random(n) < 0.05, 0] = 0.0
  wh[rng.random(n) < 0.05, 1] = -1.0
  boxes = np.concatenate([centres - wh / 2, centres + wh / 2], -1).astype(np.float32)
  scores = (rng.integers(0, 12, n) / 12).astype(np.float32)  # many ties
  scores[rng.random(n) < 0.05] = -np.inf
  valid = rng.random(n) > 0.15
  classes = rng.integers(0, 3, n).astype(np.int32)
  return boxes, scores, valid, classes


@functools.cache
def jitted(fn, max_output):
  return jax.jit(
    lambda b, s, v, t: fn(b, s, iou_threshold=t, max_output=max_output, valid=v),
  )


@functools.cache
def jitted_batched(max_output):
  return jax.jit(
    lambda b, s, c, v, t: batched_nms(b, s, c, iou_threshold=t, max_output=max_output, valid=v)
  )


def check(indices, keep_valid, expected, max_output):
  indices, keep_valid = np.asarray(indices), np.asarray(keep_valid)
  assert indices.shape == keep_valid.shape == (max_output,)
  count = min(len(expected), max_output)
  np.testing.assert_array_equal(keep_valid, np.arange(max_output) < count)
  np.testing.assert_array_equal(indices[:count], expected[:count])
  np.testing.assert_array_equal(indices[count:], 0)


@pytest.mark.parametrize("max_output", [5, 100])
@pytest.mark.parametrize("iou_threshold", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("seed", SEEDS)
def test_nms_matches_reference(seed, iou_threshold, max_output):
  boxes, scores, valid, _ = random_case(seed)
  expected = ref_nms(boxes, scores, iou_threshold, valid)
  candidates = (valid & (scores > -np.inf)).sum()
  assert 5 < len(expected) < candidates  # suppression happens; max_output 5 truncates, 100 pads
  indices, keep_valid = jitted(nms, max_output)(boxes, scores, valid, iou_threshold)
  check(indices, keep_valid, expected, max_output)


def test_nms_without_valid_mask():
  boxes, scores, _, _ = random_case(7)
  fn = jax.jit(lambda b, s: nms(b, s, iou_threshold=0.5, max_output=100))
  check(*fn(boxes, scores), ref_nms(boxes, scores, 0.5), 100)


@pytest.mark.parametrize("max_output", [5, 100])
@pytest.mark.parametrize("seed", SEEDS)
def test_batched_nms_matches_per_class_loop(seed, max_output):
  boxes, scores, valid, classes = random_case(seed)
  expected = ref_batched_nms(boxes, scores, classes, 0.5, valid)
  assert len(expected) > len(ref_nms(boxes, scores, 0.5, valid))  # classes do matter here
  out = jitted_batched(max_output)(boxes, scores, classes, valid, 0.5)
  check(*out, expected, max_output)


def test_nms_vmaps_over_images():
  cases = [random_case(seed) for seed in SEEDS]
  boxes, scores, valid, _ = (np.stack(parts) for parts in zip(*cases, strict=True))
  fn = jax.vmap(lambda b, s, v: nms(b, s, iou_threshold=0.5, max_output=100, valid=v))
  indices, keep_valid = jax.jit(fn)(boxes, scores, valid)
  for i in range(len(SEEDS)):
    check(indices[i], keep_valid[i], ref_nms(boxes[i], scores[i], 0.5, valid[i]), 100)


def test_ties_keep_the_lower_index():
  box = [0.0, 0.0, 10.0, 10.0]
  boxes = np.array([[50, 50, 60, 60], box, box, box], np.float32)
  scores = np.array([0.9, 0.5, 0.7, 0.7], np.float32)
  check(*jitted(nms, 5)(boxes, scores, np.ones(4, bool), 0.5), [0, 2], 5)
  # -0.0 and 0.0 tie as well.
  scores = np.array([0.9, -0.0, 0.0, -0.0], np.float32)
  check(*jitted(nms, 5)(boxes, scores, np.ones(4, bool), 0.5), [0, 1], 5)


def test_all_suppressed_but_one():
  rng = np.random.default_rng(0)
  boxes = (np.array([10, 10, 40, 40]) + rng.uniform(-1, 1, (N, 4))).astype(np.float32)
  scores = rng.random(N).astype(np.float32)
  check(*jitted(nms, 5)(boxes, scores, np.ones(N, bool), 0.5), [int(np.argmax(scores))], 5)


def test_nothing_valid():
  boxes, scores, _, classes = random_case(0)
  for valid, s in ((np.zeros(N, bool), scores), (np.ones(N, bool), np.full(N, -np.inf))):
    indices, keep_valid = jitted(nms, 5)(boxes, s, valid, 0.5)
    assert not np.asarray(keep_valid).any()
    np.testing.assert_array_equal(indices, 0)
    indices, keep_valid = jitted_batched(5)(boxes, s, classes, valid, 0.5)
    assert not np.asarray(keep_valid).any()


def test_invalid_and_nan_boxes_never_kept_nor_suppress():
  box = [0.0, 0.0, 10.0, 10.0]
  boxes = np.array([box, box, box, box], np.float32)
  scores = np.array([0.9, np.nan, 0.8, 0.1], np.float32)
  valid = np.array([False, True, True, True])
  check(*jitted(nms, 5)(boxes, scores, valid, 0.5), [2], 5)


def test_degenerate_boxes_neither_suppress_nor_get_suppressed():
  boxes = np.array([[0, 0, 10, 10], [0, 0, 0, 10], [0, 0, 0, 10], [5, 5, 1, 1]], np.float32)
  scores = np.array([0.1, 0.9, 0.8, 0.7], np.float32)
  check(*jitted(nms, 5)(boxes, scores, np.ones(4, bool), 0.5), [1, 2, 3, 0], 5)

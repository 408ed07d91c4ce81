"""segjax.ops.matching: the matcher against loops and a hand-made IoU matrix; sampler counts."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from segjax.ops.matching import match, sample_balanced, sampled_indices

RPN = {"thresholds": (0.3, 0.7), "labels": (0, -1, 1)}
ROI = {"thresholds": (0.5,), "labels": (0, 1)}


def ref_match(iou, gt_valid, thresholds, labels, allow_low_quality_matches):
  """detectron2's Matcher by loops; comparisons in float32 like torch's."""
  iou = iou.astype(np.float32)
  g, n = iou.shape
  rows = [i for i in range(g) if gt_valid[i]]
  matched, lab = np.zeros(n, int), np.full(n, labels[0])
  if not rows:
    return matched, lab
  bounds = [-np.inf, *(np.float32(t) for t in thresholds), np.inf]
  for j in range(n):
    best = rows[0]
    for i in rows:
      if iou[i, j] > iou[best, j]:
        best = i
    matched[j] = best
    for k, label in enumerate(labels):
      if bounds[k] <= iou[best, j] < bounds[k + 1]:
        lab[j] = label
  if allow_low_quality_matches:
    for i in rows:
      for j in range(n):
        if iou[i, j] == iou[i].max():
          lab[j] = 1
  return matched, lab


HAND_IOU = np.array(
  [
    [0.8, 0.7, 0.3, 0.1, 0.0, 0.5, 0.2],
    [0.2, 0.1, 0.29, 0.45, 0.0, 0.45, 0.2],
    [0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9],  # padding: must be ignored
  ],
  np.float32,
)
HAND_VALID = np.array([True, True, False])


def test_rpn_matcher_by_hand():
  idx, labels = match(HAND_IOU, HAND_VALID, **RPN, allow_low_quality_matches=False)
  np.testing.assert_array_equal(idx, [0, 0, 0, 1, 0, 0, 0])  # ties go to the first gt
  # 0.7 is positive and 0.3 ignored: thresholds are inclusive from below, in float32.
  np.testing.assert_array_equal(labels, [1, 1, -1, -1, 0, -1, 0])
  idx, labels = match(HAND_IOU, HAND_VALID, **RPN, allow_low_quality_matches=True)
  # gt 1's best IoU 0.45 is shared by predictions 3 and 5: both become positive; prediction 5
  # keeps its own best match (gt 0), as in detectron2.
  np.testing.assert_array_equal(idx, [0, 0, 0, 1, 0, 0, 0])
  np.testing.assert_array_equal(labels, [1, 1, -1, 1, 0, 1, 0])


def test_roi_matcher_by_hand():
  idx, labels = match(HAND_IOU, HAND_VALID, **ROI, allow_low_quality_matches=False)
  np.testing.assert_array_equal(idx, [0, 0, 0, 1, 0, 0, 0])
  np.testing.assert_array_equal(labels, [1, 1, 0, 0, 0, 1, 0])


def test_no_valid_gt_is_all_background():
  for kwargs in (RPN, ROI):
    for low in (False, True):
      idx, labels = match(HAND_IOU, np.zeros(3, bool), **kwargs, allow_low_quality_matches=low)
      np.testing.assert_array_equal(idx, 0)
      np.testing.assert_array_equal(labels, 0)


def test_low_quality_gt_without_overlap_marks_every_zero():
  # detectron2's rule taken literally: a gt overlapping nothing has highest IoU 0.
  iou = np.array([[0.9, 0.0, 0.0], [0.0, 0.0, 0.0]], np.float32)
  _, labels = match(iou, np.array([True, True]), **RPN, allow_low_quality_matches=True)
  np.testing.assert_array_equal(labels, [1, 1, 1])


def random_ious(seed, g=6, n=50):
  """Quantised IoUs (ties, exact thresholds) with some gts padded out."""
  rng = np.random.default_rng(seed)
  iou = (rng.integers(0, 21, (g, n)) / 20).astype(np.float32)
  iou[rng.random((g, n)) < 0.4] = 0.0
  valid = rng.random(g) < 0.7
  valid[seed % g] = True
  return iou, valid


@pytest.mark.parametrize("low", [False, True])
@pytest.mark.parametrize("config", [RPN, ROI], ids=["rpn", "roi"])
def test_matcher_matches_reference_under_vmap(config, low):
  cases = [random_ious(seed) for seed in range(4)]
  iou, valid = np.stack([c[0] for c in cases]), np.stack([c[1] for c in cases])
  fn = jax.jit(jax.vmap(functools.partial(match, **config, allow_low_quality_matches=low)))
  idx, labels = fn(iou, valid)
  for i in range(len(cases)):
    want_idx, want_labels = ref_match(iou[i], valid[i], **config, allow_low_quality_matches=low)
    np.testing.assert_array_equal(idx[i], want_idx)
    np.testing.assert_array_equal(labels[i], want_labels)


def test_matcher_rejects_bad_config():
  with pytest.raises(ValueError, match="labels"):
    match(HAND_IOU, HAND_VALID, thresholds=(0.5,), labels=(0,), allow_low_quality_matches=False)
  with pytest.raises(ValueError, match="increasing"):
    match(
      HAND_IOU,
      HAND_VALID,
      thresholds=(0.7, 0.3),
      labels=(0, -1, 1),
      allow_low_quality_matches=False,
    )


N, KEYS = 100, 400


def make_labels(num_pos, num_neg, rng, pos_values=(1,), bg=0):
  """N labels: num_pos positives, num_neg negatives, the rest ignored (-1), shuffled."""
  labels = np.full(N, -1, np.int32)
  labels[:num_pos] = rng.choice(pos_values, num_pos)
  labels[num_pos : num_pos + num_neg] = bg
  return rng.permutation(labels)


@functools.cache
def sampler(num_samples, fraction, bg_label):
  def fn(labels, key, valid):
    return sample_balanced(
      labels,
      key,
      num_samples=num_samples,
      positive_fraction=fraction,
      bg_label=bg_label,
      valid=valid,
    )

  return jax.jit(jax.vmap(fn, in_axes=(None, 0, None)))


@pytest.mark.parametrize(
  ("num_pos", "num_neg", "num_samples", "fraction", "bg", "invalid"),
  [
    (40, 50, 32, 0.25, 0, 0),  # enough of both
    (3, 50, 32, 0.25, 0, 0),  # too few positives: negatives fill up
    (40, 5, 32, 0.5, 0, 0),  # too few negatives: the sample is short
    (40, 50, 32, 0.25, 0, 30),  # a validity mask
    (30, 60, 32, 0.25, 5, 20),  # class labels 0..4, background 5 (detectron2's RoI head)
  ],
)
def test_sampler_exact_counts(num_pos, num_neg, num_samples, fraction, bg, invalid):
  rng = np.random.default_rng(num_pos + num_neg)
  labels = make_labels(num_pos, num_neg, rng, pos_values=range(bg) if bg else (1,), bg=bg)
  valid = np.ones(N, bool)
  valid[rng.choice(N, invalid, replace=False)] = False
  keys = jax.random.split(jax.random.key(0), KEYS)
  positive, negative = map(np.asarray, sampler(num_samples, fraction, bg)(labels, keys, valid))
  candidates_pos = (labels != bg) & (labels >= 0) & valid
  candidates_neg = (labels == bg) & valid
  want_pos = min(candidates_pos.sum(), int(num_samples * fraction))
  want_neg = min(candidates_neg.sum(), num_samples - want_pos)
  np.testing.assert_array_equal(positive.sum(1), want_pos)
  np.testing.assert_array_equal(negative.sum(1), want_neg)
  assert not (positive & ~candidates_pos).any()  # never ignored, invalid or background
  assert not (negative & ~candidates_neg).any()
  # Uniform without replacement: each candidate is picked want/available of the time.
  draws = ((positive, candidates_pos, want_pos), (negative, candidates_neg, want_neg))
  for chosen, candidates, want in draws:
    freq = chosen[:, candidates].mean(0)
    np.testing.assert_allclose(freq, want / candidates.sum(), atol=0.1)
  assert len({row.tobytes() for row in positive | negative}) > KEYS // 2


def test_sampler_without_valid_mask():
  labels = jnp.array([1, 0, -1, 0, 1, 1, 0, -1], jnp.int32)
  fn = jax.jit(functools.partial(sample_balanced, num_samples=4, positive_fraction=0.5))
  positive, negative = fn(labels, jax.random.key(3))
  assert int(positive.sum()) == 2 and int(negative.sum()) == 2
  assert not np.asarray(positive | negative)[[2, 7]].any()


def test_sampled_indices():
  fn = jax.jit(sampled_indices, static_argnums=2)
  positive = np.array([0, 1, 0, 0, 1, 0, 0, 0], bool)
  negative = np.array([1, 0, 0, 1, 0, 0, 1, 0], bool)
  indices, valid = fn(positive, negative, 8)
  np.testing.assert_array_equal(indices, [1, 4, 0, 3, 6, 0, 0, 0])
  np.testing.assert_array_equal(valid, [1, 1, 1, 1, 1, 0, 0, 0])
  indices, valid = fn(positive, negative, 3)
  np.testing.assert_array_equal(indices, [1, 4, 0])
  assert np.asarray(valid).all()
  indices, valid = fn(np.zeros(8, bool), np.zeros(8, bool), 4)
  np.testing.assert_array_equal(indices, 0)
  assert not np.asarray(valid).any()

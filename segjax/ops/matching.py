"""Matching predictions to ground truth and balanced sampling, with static shapes.

`match` is detectron2's `Matcher`, `sample_balanced` its `subsample_labels` (returning masks rather
than index lists), and `sampled_indices` gathers a sample into a fixed-size index list. Ground
truth comes padded to a fixed count with a validity mask.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp


def match(
  iou: jax.Array,
  gt_valid: jax.Array,
  *,
  thresholds: Sequence[float] = (0.3, 0.7),
  labels: Sequence[int] = (0, -1, 1),
  allow_low_quality_matches: bool,
) -> tuple[jax.Array, jax.Array]:
  """Each prediction's best ground truth and its label, detectron2's `Matcher`.

  A prediction's label is `labels[k]` where its best IoU lies in
  `[thresholds[k-1], thresholds[k])` (with -inf and +inf at the ends). With
  `allow_low_quality_matches`, for each valid ground truth every prediction whose IoU equals that
  ground truth's highest IoU (ties included) gets label 1; its `matched_idx` stays its own argmax.
  detectron2 does the same, including for a ground truth whose highest IoU is 0 (then every
  prediction not overlapping it is labelled 1).

  Args:
    iou: f32[G,N] IoU of each ground truth (rows) with each prediction (columns).
    gt_valid: bool[G] real ground truth (the rest is padding).
    thresholds: increasing IoU thresholds; RPN (0.3, 0.7), RoI head (0.5,).
    labels: one more than thresholds; RPN (0, -1, 1) (-1: ignore), RoI head (0, 1).
    allow_low_quality_matches: see above; True for the RPN, False for the RoI head.

  Returns:
    matched_idx: i32[N] index of the best valid ground truth (first on ties); 0 without any.
    match_labels: i32[N] as above; `labels[0]` everywhere when no ground truth is valid.
  """
  if len(labels) != len(thresholds) + 1:
    raise ValueError(f"need len(thresholds) + 1 labels, got {labels} for {thresholds}")
  if list(thresholds) != sorted(thresholds):
    raise ValueError(f"thresholds must be increasing, got {thresholds}")
  masked = jnp.where(gt_valid[:, None], iou, -jnp.inf)
  matched_idx = jnp.argmax(masked, axis=0).astype(jnp.int32)
  matched_iou = jnp.max(masked, axis=0)
  match_labels = jnp.full(matched_iou.shape, labels[0], jnp.int32)
  for threshold, label in zip(thresholds, labels[1:], strict=True):
    match_labels = jnp.where(matched_iou >= threshold, label, match_labels)
  if allow_low_quality_matches:
    best_for_gt = jnp.max(masked, axis=1, keepdims=True)
    is_best = (masked == best_for_gt) & gt_valid[:, None]
    match_labels = jnp.where(jnp.any(is_best, axis=0), 1, match_labels)
  return matched_idx, match_labels


def sample_balanced(
  labels: jax.Array,
  key: jax.Array,
  *,
  num_samples: int,
  positive_fraction: float,
  bg_label: int = 0,
  valid: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
  """A random sample of positives and negatives, detectron2's `subsample_labels`.

  Negatives are `labels == bg_label`, positives other labels >= 0, negative labels (-1) are
  ignored. With P positives and Q negatives, exactly `min(P, int(num_samples·positive_fraction))`
  positives are chosen, then `min(Q, num_samples - chosen positives)` negatives, each set uniformly
  at random without replacement.

  Args:
    labels: i32[N] labels, e.g. `match` labels (RPN) or class indices with `bg_label` for
      background (RoI head; detectron2 uses bg_label = num_classes there).
    key: PRNG key.
    num_samples: sample size (static).
    positive_fraction: largest share of positives.
    bg_label: label of negatives.
    valid: bool[N] entries that may be chosen; all when None.

  Returns:
    positive: bool[N] chosen positives.
    negative: bool[N] chosen negatives.
  """
  positive = (labels >= 0) & (labels != bg_label)
  negative = labels == bg_label
  if valid is not None:
    positive &= valid
    negative &= valid
  num_pos = jnp.minimum(jnp.sum(positive), int(num_samples * positive_fraction))
  num_neg = jnp.minimum(jnp.sum(negative), num_samples - num_pos)
  # The orders that one uniform permutation induces on two disjoint sets are uniform and
  # independent, so one permutation serves both draws.
  perm = jax.random.permutation(key, labels.shape[0])

  def first(mask, count):
    in_perm = mask[perm]
    chosen = in_perm & (jnp.cumsum(in_perm) <= count)
    return jnp.zeros_like(mask).at[perm].set(chosen)

  return first(positive, num_pos), first(negative, num_neg)


def sampled_indices(
  positive: jax.Array, negative: jax.Array, num_samples: int
) -> tuple[jax.Array, jax.Array]:
  """The entries of positive | negative as a fixed-size list, positives first, each by index.

  Args:
    positive: bool[N] e.g. from `sample_balanced`.
    negative: bool[N] disjoint from `positive`.
    num_samples: list length (static); entries past it are dropped.

  Returns:
    indices: i32[num_samples] into the N entries; 0 for padding.
    valid: bool[num_samples] which entries are real (a prefix).
  """
  n_pos = jnp.sum(positive)
  slot = jnp.where(positive, jnp.cumsum(positive) - 1, n_pos + jnp.cumsum(negative) - 1)
  slot = jnp.where(positive | negative, slot, num_samples)
  idx = jnp.arange(positive.shape[0], dtype=jnp.int32)
  indices = jnp.zeros(num_samples, jnp.int32).at[slot].set(idx, mode="drop")
  valid = jnp.arange(num_samples) < jnp.sum(positive | negative)
  return indices, valid

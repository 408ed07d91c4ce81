"""Tests for segjax.metrics.semantic: confusion matrix and the scores derived from it."""

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from segjax.metrics.semantic import confusion_matrix, semantic_scores

IGNORE = 255


def random_batch(seed, shape, num_label_classes, num_pred_classes, ignore_frac=0.2):
  """Labels in [0, num_label_classes) with ~ignore_frac void, preds in [0, num_pred_classes)."""
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, num_label_classes, shape).astype(np.int32)
  labels[rng.random(shape) < ignore_frac] = IGNORE
  pred = rng.integers(0, num_pred_classes, shape).astype(np.int32)
  return pred, labels


def reference_confmat(pred, labels, num_classes):
  cm = np.zeros((num_classes, num_classes), np.int64)
  valid = labels != IGNORE
  np.add.at(cm, (labels[valid], pred[valid]), 1)
  return cm


def reference_scores(pred, labels, num_classes):
  """Scores straight from the pixels, one class at a time (no confusion matrix)."""
  valid = labels != IGNORE
  total = valid.sum()
  iou, acc, fw = [], [], 0.0
  for c in range(num_classes):
    g, p = (labels == c) & valid, (pred == c) & valid
    inter, union = (g & p).sum(), (g | p).sum()
    iou.append(inter / union if union else np.nan)
    acc.append(inter / g.sum() if g.sum() else np.nan)
    if union:
      fw += g.sum() / total * inter / union
  correct = ((pred == labels) & valid).sum()
  present_iou = [x for x in iou if not np.isnan(x)]
  present_acc = [x for x in acc if not np.isnan(x)]
  return {
    "miou": sum(present_iou) / len(present_iou),
    "per_class_iou": np.array(iou),
    "pixel_accuracy": correct / total,
    "mean_accuracy": sum(present_acc) / len(present_acc),
    "per_class_accuracy": np.array(acc),
    "fw_iou": fw,
  }


def test_hand_computed():
  labels = np.array([[[0, 1], [1, IGNORE]]], np.int32)
  pred = np.array([[[0, 0], [1, 1]]], np.int32)
  # Valid pixels (gt, pred): (0, 0), (1, 0), (1, 1); the void pixel is skipped.
  cm = np.asarray(confusion_matrix(pred, labels, 2))
  np.testing.assert_array_equal(cm, [[1, 0], [1, 1]])
  scores = semantic_scores(cm)
  # IoU_0 = TP / (GT + PR - TP) = 1 / (1 + 2 - 1) = 1/2; IoU_1 = 1 / (2 + 1 - 1) = 1/2.
  np.testing.assert_allclose(scores["per_class_iou"], [1 / 2, 1 / 2])
  assert scores["miou"] == pytest.approx(1 / 2)
  # Pixel accuracy = (1 + 1) / 3; accuracies TP / GT = 1/1 and 1/2, mean 3/4.
  assert scores["pixel_accuracy"] == pytest.approx(2 / 3)
  np.testing.assert_allclose(scores["per_class_accuracy"], [1, 1 / 2])
  assert scores["mean_accuracy"] == pytest.approx(3 / 4)
  # fw IoU = (1/3) * (1/2) + (2/3) * (1/2) = 1/2.
  assert scores["fw_iou"] == pytest.approx(1 / 2)


@pytest.mark.parametrize("num_classes", [2, 7, 150])
def test_confmat_matches_numpy(num_classes):
  pred, labels = random_batch(num_classes, (3, 17, 23), num_classes, num_classes)
  cm = confusion_matrix(pred, labels, num_classes)
  assert cm.dtype == jnp.int32 and cm.shape == (num_classes, num_classes)
  np.testing.assert_array_equal(cm, reference_confmat(pred, labels, num_classes))


def test_scores_match_per_pixel_reference_with_absent_classes():
  # C = 6: class 4 is only ever predicted (IoU 0, accuracy NaN), class 5 appears nowhere (NaN).
  pred, labels = random_batch(0, (4, 32, 32), num_label_classes=4, num_pred_classes=5)
  scores = semantic_scores(confusion_matrix(pred, labels, 6))
  expected = reference_scores(pred, labels, 6)
  assert set(scores) == set(expected)
  for key, value in expected.items():
    np.testing.assert_allclose(scores[key], value, rtol=1e-12, err_msg=key)
  assert scores["per_class_iou"][4] == 0 and np.isnan(scores["per_class_iou"][5])
  assert np.isnan(scores["per_class_accuracy"][4:]).all()
  assert isinstance(scores["miou"], float) and scores["per_class_iou"].dtype == np.float64


def test_scores_accept_numpy_and_jax():
  pred, labels = random_batch(1, (2, 8, 8), 3, 3)
  cm = confusion_matrix(pred, labels, 3)
  from_jax, from_numpy = semantic_scores(cm), semantic_scores(np.asarray(cm))
  for key in from_jax:
    np.testing.assert_array_equal(from_jax[key], from_numpy[key])


def test_additive_across_batches():
  pred, labels = random_batch(2, (6, 16, 16), 5, 5)
  parts = confusion_matrix(pred[:2], labels[:2], 5) + confusion_matrix(pred[2:], labels[2:], 5)
  np.testing.assert_array_equal(parts, confusion_matrix(pred, labels, 5))


def test_under_jit_and_vmap():
  pred, labels = random_batch(3, (4, 16, 16), 4, 4)
  expected = reference_confmat(pred, labels, 4)

  @jax.jit
  def eval_step(pred, labels, ignore_index):
    # Per-"device" matrices summed, as a psum over devices would.
    per_shard = functools.partial(confusion_matrix, num_classes=4, ignore_index=ignore_index)
    return jax.vmap(per_shard)(pred.reshape(2, 2, 16, 16), labels.reshape(2, 2, 16, 16)).sum(0)

  np.testing.assert_array_equal(eval_step(pred, labels, IGNORE), expected)


def test_all_ignore_gives_zeros_and_nan_scores():
  labels = np.full((2, 4, 4), IGNORE, np.int32)
  cm = confusion_matrix(np.zeros_like(labels), labels, 3)
  np.testing.assert_array_equal(cm, np.zeros((3, 3)))
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    scores = semantic_scores(cm)
  for key, value in scores.items():
    assert np.isnan(value).all(), key


def test_out_of_range_labels_and_preds_are_skipped():
  pred, labels = random_batch(4, (2, 16, 16), 3, 3)
  rng = np.random.default_rng(5)
  bad_labels, bad_pred = labels.copy(), pred.copy()
  for bad in (bad_labels, bad_pred):
    corrupt = rng.random(bad.shape) < 0.1
    bad[corrupt] = rng.choice([-1, 3, 1000], size=corrupt.sum())
  skipped = (bad_labels != labels) | (bad_pred != pred)
  expected = reference_confmat(pred, np.where(skipped, IGNORE, labels), 3)
  np.testing.assert_array_equal(confusion_matrix(bad_pred, bad_labels, 3), expected)


def test_uint8_label_maps_do_not_overflow():
  # 149 * 150 + 149 overflows uint8 unless the inputs are widened first.
  pred, labels = random_batch(6, (2, 16, 16), 150, 150)
  cm = confusion_matrix(pred.astype(np.uint8), labels.astype(np.uint8), 150)
  np.testing.assert_array_equal(cm, reference_confmat(pred, labels, 150))

"""Tests for segjax.metrics.instance against AP values worked out by hand.

COCO AP at one IoU threshold t: detections (all images, one class) sorted by score; a detection is
a true positive when it matches an unmatched ground truth with IoU >= t. Precision is made
non-increasing from the right, then read at the 101 recall points r = 0, 0.01, ..., 1 as the
precision of the first detection whose recall is >= r (0 if none): AP_t = mean of those 101
values. AP is the mean of AP_t over t = 0.5, 0.55, ..., 0.95.
"""

import jax.numpy as jnp
import numpy as np
import pytest

from segjax.metrics.instance import SUMMARY_KEYS, coco_mask_ap

H = W = 64


def rect(r0, r1, c0, c1, size=(H, W)):
  """bool[H,W] with rows r0..r1-1 and columns c0..c1-1 set."""
  m = np.zeros(size, bool)
  m[r0:r1, c0:c1] = True
  return m


def pred(masks, scores, labels, size=(H, W), **extra):
  return {
    "masks": np.array(masks, bool).reshape(-1, *size),
    "scores": np.array(scores, np.float32),
    "labels": np.array(labels, np.int32),
    **extra,
  }


def gt(masks, labels, size=(H, W), **extra):
  return {
    "masks": np.array(masks, bool).reshape(-1, *size),
    "labels": np.array(labels, np.int32),
    **extra,
  }


def assert_all_nan(result):
  assert all(np.isnan(result[k]) for k in SUMMARY_KEYS), result


def test_perfect_predictions(capsys):
  a, b, c = rect(0, 40, 0, 40), rect(40, 64, 10, 60), rect(5, 30, 45, 60)
  gts = [gt([a, b], [0, 1]), gt([c], [1])]
  preds = [
    pred([b, a], [0.3, 0.1], [1, 0]),
    # jax arrays are accepted.
    {k: jnp.asarray(v) for k, v in pred([c], [0.7], [1]).items()},
  ]
  result = coco_mask_ap(preds, gts, class_names=["cat", "dog", "bird"])
  assert capsys.readouterr().out == ""
  for key in ("AP", "AP50", "AP75"):
    assert result[key] == pytest.approx(1.0, abs=1e-6)
  assert result["per_class_AP"]["cat"] == pytest.approx(1.0, abs=1e-6)
  assert result["per_class_AP"]["dog"] == pytest.approx(1.0, abs=1e-6)
  assert np.isnan(result["per_class_AP"]["bird"])  # no ground truth
  assert "bbox" not in result


def test_iou_between_thresholds():
  # gt: 10x50 = 500 px; prediction: its first 31 columns, 10x31 = 310 px, inside the gt.
  # IoU = 310 / 500 = 0.62 -> matched at t = 0.5, 0.55, 0.6 (0.62 >= t), not at 0.65..0.95.
  # Matched: one TP, recall 1, AP_t = 1; unmatched: AP_t = 0. AP = 3/10 = 0.3.
  result = coco_mask_ap([pred([rect(0, 10, 0, 31)], [0.9], [0])], [gt([rect(0, 10, 0, 50)], [0])])
  assert result["AP"] == pytest.approx(0.3, abs=1e-6)
  assert result["AP50"] == pytest.approx(1.0, abs=1e-6)
  assert result["AP75"] == pytest.approx(0.0, abs=1e-6)
  assert result["per_class_AP"] == {0: pytest.approx(0.3, abs=1e-6)}
  # 500 px < 32² = 1024: small; nothing is medium or large.
  assert result["APs"] == pytest.approx(0.3, abs=1e-6)
  assert np.isnan(result["APm"]) and np.isnan(result["APl"])


def test_half_recall():
  # Two gts, one detection equal to the first: tp = [1], recall = [0.5], precision = [1].
  # Recall points r = 0, 0.01, ..., 0.5 (51 of 101) find that detection (precision 1); the 50
  # points above 0.5 find none (0). AP_t = 51/101 at every threshold, so AP = AP50 = AP75 = 51/101.
  a, b = rect(0, 20, 0, 20), rect(30, 50, 30, 50)
  result = coco_mask_ap([pred([a], [0.5], [3])], [gt([a, b], [3, 3])])
  for key in ("AP", "AP50", "AP75"):
    assert result[key] == pytest.approx(51 / 101, abs=1e-6)


def test_false_positive_ranked_before_true_positive():
  # One gt; a false positive (disjoint, score 0.9) then the exact mask (score 0.8):
  # tp = [0, 1], fp = [1, 1] -> recall [0, 1], precision [0, 1/2] -> non-increasing from the
  # right: [1/2, 1/2]. r = 0 reads the first detection, r > 0 the second: all 101 points are
  # 1/2, so AP = 0.5.
  g, fp = rect(0, 20, 0, 20), rect(40, 60, 40, 60)
  result = coco_mask_ap([pred([fp, g], [0.9, 0.8], [0, 0])], [gt([g], [0])])
  for key in ("AP", "AP50", "AP75"):
    assert result[key] == pytest.approx(0.5, abs=1e-6)
  # Swapped scores: tp = [1, 0], precision [1, 1/2], recall [1, 1]; every point reads the first
  # detection, AP = 1.
  result = coco_mask_ap([pred([fp, g], [0.8, 0.9], [0, 0])], [gt([g], [0])])
  assert result["AP"] == pytest.approx(1.0, abs=1e-6)


def test_crowd_region_is_ignored():
  g, crowd, inside = rect(0, 20, 0, 20), rect(30, 60, 30, 60), rect(30, 40, 30, 40)
  # A detection inside the crowd region, scored above the true positive. Against a crowd region
  # IoU is intersection / detection area = 100/100 = 1, so it matches the crowd.
  preds = [pred([inside, g], [0.9, 0.8], [0, 0])]
  crowd_gt = gt([g, crowd], [0, 0], iscrowd=np.array([False, True]))
  result = coco_mask_ap(preds, [crowd_gt])
  # Neither TP nor FP, and the crowd gt is not counted: one TP for one gt, AP = 1.
  assert result["AP"] == pytest.approx(1.0, abs=1e-6)
  # The same region as an ordinary gt: IoU 100/900 -> the detection is a FP ranked first and that
  # gt is missed, AP = 51/101 * 1/2 (as in test_images_without_predictions_or_ground_truth).
  result = coco_mask_ap(preds, [gt([g, crowd], [0, 0])])
  assert result["AP"] == pytest.approx(51 / 101 / 2, abs=1e-6)


def test_wrong_label_does_not_match():
  g = rect(0, 20, 0, 20)
  result = coco_mask_ap([pred([g], [0.9], [1])], [gt([g], [0])])
  # Class 0: one gt, no detection -> 0; class 1: no gt -> NaN, left out of the mean.
  assert result["AP"] == pytest.approx(0.0, abs=1e-6)
  assert result["per_class_AP"][0] == pytest.approx(0.0, abs=1e-6)
  assert np.isnan(result["per_class_AP"][1])
  result = coco_mask_ap([pred([g], [0.9], [0])], [gt([g], [0])])
  assert result["AP"] == pytest.approx(1.0, abs=1e-6)


def test_images_without_predictions_or_ground_truth():
  a, b = rect(0, 20, 0, 20), rect(10, 40, 10, 40)
  preds = [
    pred([a], [0.9], [0]),  # TP
    pred([], [], []),  # no gt, no prediction
    pred([], [], []),  # gt, no prediction
    pred([b], [0.95], [0]),  # prediction, no gt: FP
  ]
  gts = [gt([a], [0]), gt([], []), gt([b], [0]), gt([], [])]
  # Two gts; by score: FP (0.95), TP (0.9): tp = [0, 1], fp = [1, 1] -> recall [0, 1/2],
  # precision [0, 1/2] -> [1/2, 1/2]. Points r = 0..0.5 (51) read 1/2, the rest 0:
  # AP = 51/101 * 1/2 at every threshold.
  result = coco_mask_ap(preds, gts)
  assert result["AP"] == pytest.approx(51 / 101 / 2, abs=1e-6)


def test_no_predictions_at_all():
  gts = [gt([rect(0, 20, 0, 20)], [0]), gt([], [])]
  result = coco_mask_ap([pred([], [], []), pred([], [], [])], gts, iou_type=("segm", "bbox"))
  for r in (result, result["bbox"]):
    assert r["AP"] == pytest.approx(0.0, abs=1e-6)
    assert r["per_class_AP"] == {0: 0.0}


def test_no_ground_truth_is_nan():
  preds = [pred([rect(0, 20, 0, 20)], [0.9], [0]), pred([], [], [])]
  result = coco_mask_ap(preds, [gt([], []), gt([], [])], iou_type=("segm", "bbox"))
  assert_all_nan(result)
  assert_all_nan(result["bbox"])
  assert np.isnan(result["per_class_AP"][0])
  result = coco_mask_ap([pred([], [], [])], [gt([], [])], class_names=["cat"])
  assert_all_nan(result)
  assert np.isnan(result["per_class_AP"]["cat"])
  assert_all_nan(coco_mask_ap([], []))


def test_bbox_ap_uses_given_boxes():
  g = rect(0, 10, 0, 50)
  # The mask is exact; its box (x1, y1, x2, y2) = (0, 0, 31, 10) covers 310 of the gt box's 500 px
  # -> box IoU 0.62, box AP 0.3 as in test_iou_between_thresholds.
  p = pred([g], [0.9], [0], boxes=np.array([[0, 0, 31, 10]], np.float32))
  result = coco_mask_ap([p], [gt([g], [0])])
  assert result["AP"] == pytest.approx(1.0, abs=1e-6)
  assert result["bbox"]["AP"] == pytest.approx(0.3, abs=1e-6)
  assert result["bbox"]["AP50"] == pytest.approx(1.0, abs=1e-6)
  assert result["bbox"]["AP75"] == pytest.approx(0.0, abs=1e-6)
  assert result["bbox"]["per_class_AP"] == {0: pytest.approx(0.3, abs=1e-6)}
  # Without boxes, "bbox" takes the masks' boxes: exact.
  result = coco_mask_ap([pred([g], [0.9], [0])], [gt([g], [0])], iou_type=("segm", "bbox"))
  assert result["bbox"]["AP"] == pytest.approx(1.0, abs=1e-6)


def test_area_ranges():
  size = (128, 128)
  small, large = rect(0, 20, 0, 20, size), rect(20, 120, 20, 120, size)
  # small: 400 px < 32² = 1024; large: 10000 px > 96² = 9216. Only the large one is detected.
  result = coco_mask_ap([pred([large], [0.9], [0], size)], [gt([small, large], [0, 0], size)])
  # All areas: recall 1/2 with precision 1 -> 51/101 (test_half_recall).
  assert result["AP"] == pytest.approx(51 / 101, abs=1e-6)
  # Small: the small gt is missed, the large detection matches the (ignored) large gt: AP 0.
  assert result["APs"] == pytest.approx(0.0, abs=1e-6)
  # Large: the small gt is ignored, one TP for one gt: AP 1. Medium: no gt.
  assert result["APl"] == pytest.approx(1.0, abs=1e-6)
  assert np.isnan(result["APm"])


def test_mismatched_image_sizes_raise():
  with pytest.raises(ValueError, match="image 0"):
    coco_mask_ap([pred([], [], [], size=(32, 32))], [gt([], [])])

"""Tests for segjax.metrics.panoptic: hand-worked PQ values and a transcription of panopticapi.

Per class: PQ = Σ IoU / (TP + FP/2 + FN/2), SQ = Σ IoU / TP, RQ = TP / (TP + FP/2 + FN/2); a
group's score is the mean over its classes with TP + FP + FN > 0. A match needs IoU > 0.5, where
the union leaves out the prediction's pixels over GT void.
"""

import json
from collections import defaultdict

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import multihost_utils

from segjax.metrics.panoptic import (
  PanopticStats,
  panoptic_quality,
  panoptic_scores,
  panoptic_stats,
  sum_across_processes,
)

D = 1000  # label_divisor
THINGS, STUFF = (1, 2), (3, 4, 5)
A, B = 1 * D + 1, 1 * D + 2  # thing 1, instances 1 and 2
C = 2 * D + 1  # thing 2, instance 1
K = 1 * D  # thing 1, instance 0: a crowd region in the ground truth
S, T, U = 3 * D, 4 * D, 5 * D  # stuff 3, 4, 5
V = 255 * D  # void
X = 9 * D  # class 9, neither thing nor stuff: void too


def pq(pred, gt):
  return panoptic_quality(np.array(pred), np.array(gt), things=THINGS, stuff=STUFF)


def scores(result, group=""):
  """(PQ, SQ, RQ) of a class id, or of a group by suffix: "" (all), "_things", "_stuff"."""
  if isinstance(group, int):
    return tuple(result["per_class"][group][k] for k in ("pq", "sq", "rq"))
  return tuple(result[k + group] for k in ("pq", "sq", "rq"))


def assert_absent(result, cls):
  """A class with TP = FP = FN = 0: NaN scores."""
  s = result["per_class"][cls]
  assert (s["tp"], s["fp"], s["fn"]) == (0, 0, 0)
  assert np.isnan(scores(result, cls)).all()


def test_perfect_prediction():
  gt = [[A, A, S, S, C, C]] * 2 + [[T] * 6] * 2
  result = panoptic_quality(
    jnp.asarray(gt, jnp.int32), np.array(gt), things=THINGS, stuff=STUFF
  )  # jax arrays are accepted
  for suffix in ("", "_things", "_stuff"):
    assert scores(result, suffix) == (1.0, 1.0, 1.0)
  assert (result["n"], result["n_things"], result["n_stuff"]) == (4, 2, 2)
  assert result["per_class"][1] == {"pq": 1.0, "sq": 1.0, "rq": 1.0, "tp": 1, "fp": 0, "fn": 0}
  assert_absent(result, 5)
  assert list(result) == [
    "pq", "sq", "rq", "n",
    "pq_things", "sq_things", "rq_things", "n_things",
    "pq_stuff", "sq_stuff", "rq_stuff", "n_stuff",
    "per_class",
  ]  # fmt: skip
  assert sorted(result["per_class"]) == [1, 2, 3, 4, 5]
  json.dumps(result)  # plain Python numbers
  assert all(type(v) is float for k, v in result.items() if k[:2] in ("pq", "sq", "rq"))


def test_thing_split_in_two():
  gt = [[A, A, A, A, S, S]] * 4  # thing A: 16 px
  # Halves of 8 px: IoU = 8 / (8 + 16 - 8) = 0.5 exactly, which is not a match (IoU > 0.5).
  # Class 1: TP 0, FP 2, FN 1 -> 0 everywhere; class 3 is perfect. Means over the 2 classes.
  result = pq([[A, A, B, B, S, S]] * 4, gt)
  assert result["per_class"][1] == {"pq": 0.0, "sq": 0.0, "rq": 0.0, "tp": 0, "fp": 2, "fn": 1}
  assert scores(result, "") == pytest.approx((0.5, 0.5, 0.5))
  # 12 px + 4 px: the large part has IoU 12/16 = 0.75 (TP), the small one 4/16 (FP).
  # Class 1: PQ = 0.75 / (1 + 1/2) = 0.5, SQ = 0.75, RQ = 1 / 1.5 = 2/3: SQ and RQ differ.
  result = pq([[A, A, A, B, S, S]] * 4, gt)
  assert (result["per_class"][1]["tp"], result["per_class"][1]["fp"]) == (1, 1)
  assert scores(result, 1) == pytest.approx((0.5, 0.75, 2 / 3))
  assert scores(result, "_things") == pytest.approx((0.5, 0.75, 2 / 3))
  assert scores(result, "_stuff") == pytest.approx((1.0, 1.0, 1.0))
  # Overall: means over classes 1 and 3.
  assert scores(result, "") == pytest.approx((0.75, 0.875, 5 / 6))


def test_unmatched_stuff():
  # Stuff 4 is missed (FN) and predicted as stuff 5, absent from the GT (FP); stuff 3 is perfect.
  result = pq([[S, S, S, U, U, U]] * 4, [[S, S, S, T, T, T]] * 4)
  assert (result["per_class"][4]["fn"], result["per_class"][5]["fp"]) == (1, 1)
  assert scores(result, 4) == pytest.approx((0.0, 0.0, 0.0))
  assert scores(result, 5) == pytest.approx((0.0, 0.0, 0.0))
  assert scores(result, "") == pytest.approx((1 / 3, 1 / 3, 1 / 3))
  assert scores(result, "_stuff") == pytest.approx((1 / 3, 1 / 3, 1 / 3))
  # No thing class occurs: both are NaN and left out; the empty group is 0 with n = 0.
  assert_absent(result, 1)
  assert_absent(result, 2)
  assert (result["n"], result["n_things"], result["n_stuff"]) == (3, 0, 3)
  assert scores(result, "_things") == pytest.approx((0.0, 0.0, 0.0))


@pytest.mark.parametrize("void", [V, V + 7, X])
def test_void_left_out_of_union(void):
  # GT thing A: 8 px; the predicted A (20 px) also covers the 12 void pixels. Union without them:
  # 20 + 8 - 8 - 12 = 8, IoU 1 (with them it would be 8/20 = 0.4, no match).
  gt = [[A, A, void, void, void, S]] * 4
  result = pq([[A, A, A, A, A, S]] * 4, gt)
  assert result["per_class"][1] == {"pq": 1.0, "sq": 1.0, "rq": 1.0, "tp": 1, "fp": 0, "fn": 0}
  assert scores(result, "") == pytest.approx((1.0, 1.0, 1.0))


def test_prediction_mostly_on_void_is_not_a_false_positive():
  gt = [[S, S, S, V, V, V]] * 4  # stuff 3: 12 px
  # Predicted S: 8 px, IoU 8/12. Thing C: 16 px, 12 on void: 12/16 > 0.5, not a FP.
  result = pq([[S, S, C, C, C, C]] * 4, gt)
  assert scores(result, 3) == pytest.approx((2 / 3, 2 / 3, 1.0))
  assert_absent(result, 2)
  assert scores(result, "") == pytest.approx((2 / 3, 2 / 3, 1.0))
  # C: 8 px, 4 on void: exactly half, so a FP. S: 8 px, IoU 8/12 again.
  pred = [[S, C, C, C, C, V]] * 2 + [[S, S, S, V, V, V]] * 2
  result = pq(pred, gt)
  assert result["per_class"][2]["fp"] == 1
  assert scores(result, 2) == pytest.approx((0.0, 0.0, 0.0))
  assert scores(result, "") == pytest.approx((1 / 3, 1 / 3, 0.5))


def test_crowd_region():
  gt = [[K, K, K, S, S, S]] * 4  # a crowd region of thing 1
  # A lies inside the crowd of its own class: neither TP nor FP; the crowd is no FN. A prediction
  # with the crowd's own id is an ordinary segment, treated alike.
  for thing in (A, K):
    result = pq([[thing, thing, thing, S, S, S]] * 4, gt)
    assert_absent(result, 1)
    assert scores(result, "") == pytest.approx((1.0, 1.0, 1.0))
  # C is of another class: a FP.
  result = pq([[C, C, C, S, S, S]] * 4, gt)
  assert result["per_class"][2]["fp"] == 1
  assert_absent(result, 1)
  assert scores(result, "") == pytest.approx((0.5, 0.5, 0.5))

  # Crowd and void add up: A (16 px) has 8 px on each, half each, 16/16 together: not a FP.
  # C only counts the void: 8/16 = 0.5, a FP.
  gt = [[K, K, V, V, S, S]] * 4
  assert_absent(pq([[A, A, A, A, S, S]] * 4, gt), 1)
  assert pq([[C, C, C, C, S, S]] * 4, gt)["per_class"][2]["fp"] == 1


def test_batch_statistics_are_summed_before_averaging():
  gt = [[[A, A, A, S, S, S]] * 4, [[C, C, C, T, T, T]] * 4]
  # Image 0 is perfect. Image 1: C keeps 8 of 12 px (IoU 2/3, TP), stuff 4 is missed (FN) and
  # stuff 5 predicted instead (FP).
  pred = [gt[0], [[C, C, V, U, U, U]] * 4]
  result = pq(pred, gt)
  # Per class (PQ, SQ, RQ): 1 -> (1, 1, 1), 2 -> (2/3, 2/3, 1), 3 -> (1, 1, 1), 4, 5 -> (0, 0, 0).
  assert scores(result, 2) == pytest.approx((2 / 3, 2 / 3, 1.0))
  assert scores(result, "_things") == pytest.approx((5 / 6, 5 / 6, 1.0))
  assert scores(result, "_stuff") == pytest.approx((1 / 3, 1 / 3, 1 / 3))
  assert scores(result, "") == pytest.approx((8 / 15, 8 / 15, 3 / 5))
  assert (result["n"], result["n_things"], result["n_stuff"]) == (5, 2, 3)
  # Not the mean of the per-image PQs, 1 and (2/3 + 0 + 0) / 3.
  assert result["pq"] != pytest.approx((pq(pred[0], gt[0])["pq"] + pq(pred[1], gt[1])["pq"]) / 2)


def test_errors():
  gt = np.full((4, 6), S)
  with pytest.raises(ValueError, match=r"\(4, 5\).*\(4, 6\)"):
    pq(gt[:, :5], gt)
  with pytest.raises(ValueError, match=r"both things and stuff"):
    panoptic_quality(gt, gt, things=(1, 3), stuff=(3,))
  with pytest.raises(ValueError, match="label_divisor"):
    panoptic_quality(gt, gt, things=THINGS, stuff=STUFF, label_divisor=0)
  with pytest.raises(ValueError, match=r"\[0, 4\)"):
    panoptic_stats(gt, gt, num_classes=4, things=THINGS, stuff=STUFF)
  with pytest.raises(ValueError, match="ignore_index 3"):
    panoptic_quality(gt, gt, things=THINGS, stuff=STUFF, ignore_index=3)
  with pytest.raises(ValueError, match="integer ids"):
    pq(gt.astype(float), gt)


# A transcription of panopticapi (github.com/cocodataset/panopticapi, panopticapi/evaluation.py),
# reading the images from arrays instead of PNGs.

OFFSET = 256 * 256 * 256
VOID = 0


class PQStatCat:
  def __init__(self):
    self.iou = 0.0
    self.tp = 0
    self.fp = 0
    self.fn = 0


class PQStat:
  def __init__(self):
    self.pq_per_cat = defaultdict(PQStatCat)

  def __getitem__(self, i):
    return self.pq_per_cat[i]

  def pq_average(self, categories, isthing):
    pq, sq, rq, n = 0, 0, 0, 0
    per_class_results = {}
    for label, label_info in categories.items():
      if isthing is not None:
        cat_isthing = label_info["isthing"] == 1
        if isthing != cat_isthing:
          continue
      iou = self.pq_per_cat[label].iou
      tp = self.pq_per_cat[label].tp
      fp = self.pq_per_cat[label].fp
      fn = self.pq_per_cat[label].fn
      if tp + fp + fn == 0:
        per_class_results[label] = {"pq": 0.0, "sq": 0.0, "rq": 0.0}
        continue
      n += 1
      pq_class = iou / (tp + 0.5 * fp + 0.5 * fn)
      sq_class = iou / tp if tp != 0 else 0
      rq_class = tp / (tp + 0.5 * fp + 0.5 * fn)
      per_class_results[label] = {"pq": pq_class, "sq": sq_class, "rq": rq_class}
      pq += pq_class
      sq += sq_class
      rq += rq_class
    if n == 0:  # panopticapi divides by zero here
      return {"pq": 0.0, "sq": 0.0, "rq": 0.0, "n": 0}, per_class_results
    return {"pq": pq / n, "sq": sq / n, "rq": rq / n, "n": n}, per_class_results


def to_panopticapi(ids, categories):
  """segjax ids -> (panopticapi id map with 0 = VOID, segments_info)."""
  pan = np.zeros(ids.shape, np.uint32)
  segments_info = []
  for value in np.unique(ids):
    category_id, instance = divmod(int(value), D)
    if category_id not in categories:
      continue  # stays VOID
    mask = ids == value
    segment_id = 1 + 7 * len(segments_info)  # any nonzero id
    pan[mask] = segment_id
    iscrowd = int(categories[category_id]["isthing"] == 1 and instance == 0)
    segments_info.append(
      {"id": segment_id, "category_id": category_id, "iscrowd": iscrowd, "area": int(mask.sum())}
    )
  return pan, segments_info


def pq_compute_single_image(pq_stat, pred_ids, gt_ids, categories):
  """panopticapi's `pq_compute_single_core` loop body; returns how many predictions it ignored."""
  pan_gt, gt_segments_info = to_panopticapi(gt_ids, categories)
  pan_pred, pred_segments_info = to_panopticapi(pred_ids, categories)
  # segjax predictions carry no iscrowd flag.
  pred_segments_info = [{**el, "iscrowd": 0} for el in pred_segments_info]
  gt_segms = {el["id"]: el for el in gt_segments_info}
  pred_segms = {el["id"]: el for el in pred_segments_info}

  # predicted segments area calculation
  labels, labels_cnt = np.unique(pan_pred, return_counts=True)
  for label, label_cnt in zip(labels, labels_cnt, strict=True):
    if label not in pred_segms:
      assert label == VOID
      continue
    pred_segms[label]["area"] = label_cnt

  # confusion matrix calculation
  pan_gt_pred = pan_gt.astype(np.uint64) * OFFSET + pan_pred.astype(np.uint64)
  gt_pred_map = {}
  labels, labels_cnt = np.unique(pan_gt_pred, return_counts=True)
  for label, intersection in zip(labels, labels_cnt, strict=True):
    gt_id = label // OFFSET
    pred_id = label % OFFSET
    gt_pred_map[(gt_id, pred_id)] = intersection

  # count all matched pairs
  gt_matched = set()
  pred_matched = set()
  for label_tuple, intersection in gt_pred_map.items():
    gt_label, pred_label = label_tuple
    if gt_label not in gt_segms:
      continue
    if pred_label not in pred_segms:
      continue
    if gt_segms[gt_label]["iscrowd"] == 1:
      continue
    if gt_segms[gt_label]["category_id"] != pred_segms[pred_label]["category_id"]:
      continue

    union = (
      pred_segms[pred_label]["area"]
      + gt_segms[gt_label]["area"]
      - intersection
      - gt_pred_map.get((VOID, pred_label), 0)
    )
    iou = intersection / union
    if iou > 0.5:
      pq_stat[gt_segms[gt_label]["category_id"]].tp += 1
      pq_stat[gt_segms[gt_label]["category_id"]].iou += iou
      gt_matched.add(gt_label)
      pred_matched.add(pred_label)

  # count false negatives
  crowd_labels_dict = {}
  for gt_label, gt_info in gt_segms.items():
    if gt_label in gt_matched:
      continue
    # crowd segments are ignored
    if gt_info["iscrowd"] == 1:
      crowd_labels_dict[gt_info["category_id"]] = gt_label
      continue
    pq_stat[gt_info["category_id"]].fn += 1

  # count false positives
  ignored = 0
  for pred_label, pred_info in pred_segms.items():
    if pred_label in pred_matched:
      continue
    # intersection of the segment with VOID
    intersection = gt_pred_map.get((VOID, pred_label), 0)
    # plus intersection with corresponding CROWD region if it exists
    if pred_info["category_id"] in crowd_labels_dict:
      intersection += gt_pred_map.get((crowd_labels_dict[pred_info["category_id"]], pred_label), 0)
    # predicted segment is ignored if more than half of the segment correspond to VOID and CROWD
    # regions
    if intersection / pred_info["area"] > 0.5:
      ignored += 1
      continue
    pq_stat[pred_info["category_id"]].fp += 1
  return ignored


# Random cases: things 1-3, stuff 4-7 (7 only in predictions), class 9 in neither list.
R_THINGS, R_STUFF = (1, 2, 3), (4, 5, 6, 7)
CATEGORIES = {c: {"id": c, "isthing": int(c in R_THINGS)} for c in R_THINGS + R_STUFF}
H, W = 24, 32


def random_rect(rng, out, value, max_size=10):
  r0, c0 = rng.integers(0, H - 2), rng.integers(0, W - 2)
  h, w = rng.integers(2, max_size, size=2)
  out[r0 : r0 + h, c0 : c0 + w] = value


def random_gt(rng):
  gt = np.zeros((H, W), np.int64)
  cuts = np.sort(rng.choice(np.arange(1, W), size=rng.integers(1, 4), replace=False))
  for c0, c1 in zip([0, *cuts], [*cuts, W], strict=True):
    gt[:, c0:c1] = rng.choice(R_STUFF[:3]) * D
  for instance in range(1, rng.integers(3, 8)):
    random_rect(rng, gt, rng.choice(R_THINGS) * D + instance)
  if rng.random() < 0.6:
    random_rect(rng, gt, rng.choice(R_THINGS) * D)  # crowd
  random_rect(rng, gt, 255 * D, max_size=8)
  if rng.random() < 0.3:
    random_rect(rng, gt, 9 * D, max_size=6)
  gt[rng.random((H, W)) < 0.03] = 255 * D
  return gt


def random_pred(rng, gt):
  pred = np.roll(gt, rng.integers(-2, 3, size=2), axis=(0, 1))
  if rng.random() < 0.5:  # fill void with segments spilling from the left
    void = pred // D == 255
    pred[void] = np.roll(pred, 3, axis=1)[void]
  segments = [s for s in np.unique(pred) if s // D in CATEGORIES]
  for k, s in enumerate(segments):
    mask = pred == s
    op = rng.choice(["keep", "relabel", "drop", "split", "merge"], p=[0.5, 0.15, 0.1, 0.15, 0.1])
    if op == "relabel":
      pred[mask] = rng.choice([*CATEGORIES, 9]) * D + s % D
    elif op == "drop":
      pred[mask] = rng.choice([255, 9]) * D
    elif op == "split":
      cols = np.nonzero(mask)[1]
      pred[mask & (np.arange(W) >= rng.integers(cols.min(), cols.max() + 1))] = s + 100 + k
    elif op == "merge":
      pred[mask] = rng.choice(segments)
  for k in range(rng.integers(0, 3)):
    random_rect(rng, pred, rng.choice([*CATEGORIES]) * D + 500 + k)
  noise = rng.random((H, W)) < 0.02
  pred[noise] = rng.choice([*CATEGORIES, 255]) * D + rng.integers(0, 3, size=noise.sum())
  return pred


@pytest.fixture(scope="module")
def random_cases():
  rng = np.random.default_rng(0)
  gts = [random_gt(rng) for _ in range(20)]
  preds = np.stack([random_pred(rng, gt) for gt in gts])
  return preds, np.stack(gts)


def reference(preds, gts):
  pq_stat = PQStat()
  ignored = sum(
    pq_compute_single_image(pq_stat, p, g, CATEGORIES) for p, g in zip(preds, gts, strict=True)
  )
  return pq_stat, ignored


def assert_matches_reference(result, pq_stat):
  for suffix, isthing in (("", None), ("_things", True), ("_stuff", False)):
    expected, _ = pq_stat.pq_average(CATEGORIES, isthing)
    for key in ("pq", "sq", "rq"):
      assert result[key + suffix] == pytest.approx(expected[key], abs=1e-9), key + suffix
    assert result["n" + suffix] == expected["n"]
  _, per_class = pq_stat.pq_average(CATEGORIES, None)
  assert sorted(result["per_class"]) == sorted(CATEGORIES)
  for label, s in result["per_class"].items():
    stat = pq_stat[label]
    assert (s["tp"], s["fp"], s["fn"]) == (stat.tp, stat.fp, stat.fn)
    if stat.tp + stat.fp + stat.fn == 0:  # panopticapi reports 0 here, segjax NaN
      assert np.isnan(scores(result, label)).all()
    else:
      expected = tuple(per_class[label][k] for k in ("pq", "sq", "rq"))
      assert scores(result, label) == pytest.approx(expected, abs=1e-9)


def test_matches_panopticapi(random_cases):
  preds, gts = random_cases
  kwargs = {"things": R_THINGS, "stuff": R_STUFF}
  pq_stat, ignored = reference(preds, gts)
  assert_matches_reference(panoptic_quality(preds, gts, **kwargs), pq_stat)
  totals = np.zeros(3, int)
  for pred, gt in zip(preds, gts, strict=True):
    pq_stat, _ = reference([pred], [gt])
    assert_matches_reference(panoptic_quality(pred, gt, **kwargs), pq_stat)
    totals += [sum(getattr(s, k) for s in pq_stat.pq_per_cat.values()) for k in ("tp", "fp", "fn")]
  # The cases exercise every outcome: matches, false positives and negatives, ignored predictions
  # (on void or crowd), crowd regions.
  assert (totals > 0).all() and ignored > 0, (totals, ignored)
  assert any(s["iscrowd"] for g in gts for s in to_panopticapi(g, CATEGORIES)[1])


def random_stats(preds, gts, **kwargs):
  return panoptic_stats(preds, gts, num_classes=10, things=R_THINGS, stuff=R_STUFF, **kwargs)


def test_streaming_sums(random_cases):
  preds, gts = random_cases
  whole = random_stats(preds, gts)
  chunks = PanopticStats.zeros(10)
  for start in range(0, len(preds), 6):
    chunks += random_stats(preds[start : start + 6], gts[start : start + 6])
  for name in ("tp", "fp", "fn"):
    assert np.array_equal(getattr(chunks, name), getattr(whole, name))
    assert getattr(whole, name).dtype == np.int64
  np.testing.assert_allclose(chunks.iou_sum, whole.iou_sum, rtol=1e-12)
  # num_classes = 10 pads classes 8 and 9 with zeros; panoptic_quality takes C = 8. NaN != NaN, so
  # compare the JSON texts.
  expected = panoptic_quality(preds, gts, things=R_THINGS, stuff=R_STUFF)
  assert json.dumps(panoptic_scores(whole, things=R_THINGS, stuff=R_STUFF)) == json.dumps(expected)


def test_pytree_and_processes(random_cases, monkeypatch):
  preds, gts = random_cases
  a, b = random_stats(preds[:10], gts[:10]), random_stats(preds[10:], gts[10:])
  assert len(jax.tree.leaves(a)) == 4
  summed = jax.tree.map(np.add, a, b)
  assert isinstance(summed, PanopticStats)
  for x, y in zip(jax.tree.leaves(summed), jax.tree.leaves(a + b), strict=True):
    assert np.array_equal(x, y)

  assert sum_across_processes(a) is a  # one process
  # Two processes holding the same stats. Like the real gather, the fake one puts the arrays on a
  # device, which without x64 narrows int64 and float64 to 32 bits: the sum must survive that.
  monkeypatch.setattr(jax, "process_count", lambda: 2)
  monkeypatch.setattr(
    multihost_utils, "process_allgather", lambda x: np.stack([np.asarray(jax.device_put(x))] * 2)
  )
  total = sum_across_processes(a)
  for name in ("tp", "fp", "fn", "iou_sum"):
    assert getattr(total, name).dtype == getattr(a, name).dtype
    assert np.array_equal(getattr(total, name), 2 * getattr(a, name)), name

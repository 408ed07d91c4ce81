"""Panoptic quality (PQ, SQ, RQ), exactly as the COCO panopticapi computes it, on segjax's ids.

Kirillov et al., "Panoptic Segmentation", CVPR 2019; the matching and averaging follow the official
`panopticapi.evaluation` (`pq_compute_single_core`, `PQStat.pq_average`).

Ids are `class * label_divisor + instance`. A ground-truth (GT) or predicted id whose class is in
`things` or `stuff` is one segment; every other pixel (class `ignore_index`, or any class in
neither list) is VOID in the GT and belongs to no segment in the prediction. A GT thing id with
instance 0 is a crowd region of its class (panopticapi's `iscrowd=1`); in a prediction it is an
ordinary segment.

Per image and class: a GT and a predicted segment of the same class match (TP) when
IoU > 0.5, where the union leaves out the prediction's pixels over GT VOID; unmatched non-crowd GT
segments are FN; unmatched predicted segments are FP unless more than half of their pixels lie on
GT VOID or on the crowd region of their class. Then PQ_c = Σ IoU / (TP + FP/2 + FN/2),
SQ_c = Σ IoU / TP and RQ_c = TP / (TP + FP/2 + FN/2), averaged over the classes with
TP + FP + FN > 0.

`panoptic_stats` returns per-class counts that add up across images, batches and hosts
(`PanopticStats.__add__`, `sum_across_processes`); `panoptic_scores` turns them into PQ on the host.
"""

import dataclasses
from collections.abc import Iterable
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils

from segjax.metrics.semantic import safe_divide


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class PanopticStats:
  """Per-class panoptic counts, indexed by class id; a pytree of four numpy arrays.

  Attributes:
    tp: i64[C] matched (GT, prediction) pairs.
    fp: i64[C] unmatched predicted segments that are not mostly VOID or crowd.
    fn: i64[C] unmatched non-crowd GT segments.
    iou_sum: f64[C] sum of the IoUs of the matched pairs.
  """

  tp: np.ndarray
  fp: np.ndarray
  fn: np.ndarray
  iou_sum: np.ndarray

  @classmethod
  def zeros(cls, num_classes: int) -> "PanopticStats":
    """All-zero stats for `num_classes` classes (the start of a running sum)."""
    count = np.zeros(num_classes, np.int64)
    return cls(tp=count, fp=count.copy(), fn=count.copy(), iou_sum=np.zeros(num_classes))

  @property
  def num_classes(self) -> int:
    return len(self.tp)

  def __add__(self, other: "PanopticStats") -> "PanopticStats":
    return jax.tree.map(np.add, self, other)


def _image_stats(
  pred: np.ndarray,
  gt: np.ndarray,
  is_thing: np.ndarray,
  is_segment: np.ndarray,
  label_divisor: int,
) -> PanopticStats:
  """Stats of one image: `pred, gt: i64[H,W]` ids; `is_thing, is_segment: bool[C]` per class."""
  c = len(is_thing)

  def segment_ids(ids):
    """-1 where the class is not a thing/stuff class (GT VOID / no predicted segment)."""
    classes = ids // label_divisor
    known = (classes >= 0) & (classes < c)
    known[known] = is_segment[classes[known]]
    return np.where(known, ids, -1)

  gt_ids, gt_index = np.unique(segment_ids(gt.ravel()), return_inverse=True)
  pred_ids, pred_index = np.unique(segment_ids(pred.ravel()), return_inverse=True)
  gt_area, pred_area = np.bincount(gt_index), np.bincount(pred_index)
  gt_void, pred_void = gt_ids < 0, pred_ids < 0
  gt_class, pred_class = gt_ids // label_divisor, pred_ids // label_divisor
  gt_crowd = ~gt_void & is_thing[np.where(gt_void, 0, gt_class)] & (gt_ids % label_divisor == 0)

  # Intersections of all (GT, prediction) pairs that share a pixel: g[k], p[k] overlap on inter[k].
  n_pred = len(pred_ids)
  pairs, inter = np.unique(gt_index * n_pred + pred_index, return_counts=True)
  g, p = np.divmod(pairs, n_pred)
  same_class = gt_class[g] == pred_class[p]

  def overlap(select):
    """Per predicted segment, its pixels on the GT segments of the selected pairs."""
    return np.bincount(p[select], weights=inter[select], minlength=n_pred)

  on_void = overlap(gt_void[g])
  # A crowd region only discounts predictions of its own class.
  on_crowd = overlap(gt_crowd[g] & same_class)

  candidate = ~gt_void[g] & ~pred_void[p] & ~gt_crowd[g] & same_class
  union = pred_area[p] + gt_area[g] - inter - on_void[p]
  iou = np.divide(inter, union, out=np.zeros(len(inter)), where=candidate)
  # IoU > 0.5 makes every segment match at most once.
  matched = candidate & (iou > 0.5)
  tp = np.bincount(gt_class[g[matched]], minlength=c)
  iou_sum = np.bincount(gt_class[g[matched]], weights=iou[matched], minlength=c)

  missed = ~gt_void & ~gt_crowd
  missed[g[matched]] = False
  fn = np.bincount(gt_class[missed], minlength=c)

  false_pos = ~pred_void & ((on_void + on_crowd) / pred_area <= 0.5)
  false_pos[p[matched]] = False
  fp = np.bincount(pred_class[false_pos], minlength=c)
  return PanopticStats(tp=tp, fp=fp, fn=fn, iou_sum=iou_sum)


def _check_classes(
  things: Iterable[int], stuff: Iterable[int], num_classes: int | None = None
) -> tuple[list[int], list[int]]:
  """Sorted, de-duplicated `things` and `stuff`, checked to be disjoint and in [0, C)."""
  things, stuff = sorted({int(c) for c in things}), sorted({int(c) for c in stuff})
  if both := sorted(set(things) & set(stuff)):
    raise ValueError(f"classes {both} are in both things and stuff")
  if any(c < 0 for c in things + stuff):
    raise ValueError(f"negative class id in things {things} or stuff {stuff}")
  if num_classes is not None and max(things + stuff, default=-1) >= num_classes:
    raise ValueError(f"things {things} and stuff {stuff} must lie in [0, {num_classes})")
  return things, stuff


def _id_batch(ids: Any, name: str) -> np.ndarray:
  """int[H,W] or int[B,H,W] ids (numpy or jax) -> i64[B,H,W]."""
  ids = np.asarray(ids)
  if not np.issubdtype(ids.dtype, np.integer):
    raise ValueError(f"{name} must hold integer ids, got dtype {ids.dtype}")
  if ids.ndim not in (2, 3):
    raise ValueError(f"{name} must be [H,W] or [B,H,W], got shape {ids.shape}")
  return ids.astype(np.int64).reshape(-1, *ids.shape[-2:])


def panoptic_stats(
  pred: Any,
  gt: Any,
  *,
  num_classes: int,
  things: Iterable[int],
  stuff: Iterable[int],
  label_divisor: int = 1000,
  ignore_index: int = 255,
) -> PanopticStats:
  """Per-class TP, FP, FN and IoU sums of a batch, each image matched separately. Host-side numpy.

  Args:
    pred: int[B,H,W] or int[H,W] predicted ids `class * label_divisor + instance` (numpy or jax).
    gt: int[B,H,W] or int[H,W] ground-truth ids, same shape.
    num_classes: C, the length of the per-class arrays; above every class in `things` and `stuff`.
    things: thing class ids (GT instance 0 marks a crowd region).
    stuff: stuff class ids.
    label_divisor: id = class * label_divisor + instance.
    ignore_index: the void class. Any class outside `things` and `stuff` is void too, so this only
      guards against listing the void class as a thing or stuff class.

  Returns:
    The summed PanopticStats of the batch, C classes.
  """
  if np.shape(pred) != np.shape(gt):
    raise ValueError(f"pred shape {np.shape(pred)} != gt shape {np.shape(gt)}")
  if label_divisor <= 0:
    raise ValueError(f"label_divisor must be positive, got {label_divisor}")
  things, stuff = _check_classes(things, stuff, num_classes)
  if ignore_index in things + stuff:
    raise ValueError(f"ignore_index {ignore_index} is listed as a thing or stuff class")
  is_thing = np.zeros(num_classes, bool)
  is_thing[things] = True
  is_segment = is_thing.copy()
  is_segment[stuff] = True
  stats = PanopticStats.zeros(num_classes)
  for p, g in zip(_id_batch(pred, "pred"), _id_batch(gt, "gt"), strict=True):
    stats += _image_stats(p, g, is_thing, is_segment, label_divisor)
  return stats


def panoptic_scores(
  stats: PanopticStats, *, things: Iterable[int], stuff: Iterable[int]
) -> dict[str, Any]:
  """PQ, SQ and RQ from (summed) stats, averaged as panopticapi's `PQStat.pq_average`.

  A group's scores are the means over its classes with TP + FP + FN > 0 (`n` of them); a group
  without any is 0 with `n` = 0. Per class, SQ is 0 when TP = 0 < FP + FN, and PQ, SQ and RQ are
  NaN when TP + FP + FN = 0.

  Args:
    stats: PanopticStats, e.g. summed over a dataset.
    things: thing class ids.
    stuff: stuff class ids.

  Returns:
    {'pq', 'sq', 'rq', 'n'} over all classes, the same with suffix '_things' and '_stuff', and
    'per_class': {class id: {'pq', 'sq', 'rq', 'tp', 'fp', 'fn'}} for every thing and stuff class.
    Python floats and ints.
  """
  things, stuff = _check_classes(things, stuff, stats.num_classes)
  tp, fp, fn = (np.asarray(x, np.float64) for x in (stats.tp, stats.fp, stats.fn))
  iou_sum = np.asarray(stats.iou_sum, np.float64)
  den = tp + 0.5 * fp + 0.5 * fn
  pq, rq = safe_divide(iou_sum, den), safe_divide(tp, den)
  sq = np.where(tp > 0, safe_divide(iou_sum, tp), np.where(den > 0, 0.0, np.nan))

  out: dict[str, Any] = {}
  for suffix, classes in (("", things + stuff), ("_things", things), ("_stuff", stuff)):
    present = [c for c in classes if den[c] > 0]
    for name, score in (("pq", pq), ("sq", sq), ("rq", rq)):
      out[name + suffix] = float(score[present].mean()) if present else 0.0
    out["n" + suffix] = len(present)
  out["per_class"] = {
    c: {
      "pq": float(pq[c]),
      "sq": float(sq[c]),
      "rq": float(rq[c]),
      "tp": int(stats.tp[c]),
      "fp": int(stats.fp[c]),
      "fn": int(stats.fn[c]),
    }
    for c in sorted(things + stuff)
  }
  return out


def panoptic_quality(
  pred: Any,
  gt: Any,
  *,
  things: Iterable[int],
  stuff: Iterable[int],
  label_divisor: int = 1000,
  ignore_index: int = 255,
) -> dict[str, Any]:
  """PQ, SQ and RQ of a batch: `panoptic_scores(panoptic_stats(...))`, C = max class + 1.

  Args:
    pred: int[B,H,W] or int[H,W] predicted ids `class * label_divisor + instance` (numpy or jax).
    gt: int[B,H,W] or int[H,W] ground-truth ids, same shape.
    things, stuff, label_divisor, ignore_index: as in `panoptic_stats`.

  Returns:
    The dict of `panoptic_scores`.
  """
  things, stuff = tuple(things), tuple(stuff)
  num_classes = max((int(c) for c in things + stuff), default=-1) + 1
  stats = panoptic_stats(
    pred,
    gt,
    num_classes=num_classes,
    things=things,
    stuff=stuff,
    label_divisor=label_divisor,
    ignore_index=ignore_index,
  )
  return panoptic_scores(stats, things=things, stuff=stuff)


def sum_across_processes(stats: PanopticStats) -> PanopticStats:
  """The sum of every process's `stats`, on every process (a collective: all must call it).

  The arrays travel bit-cast to uint32, since JAX without x64 (its default) would narrow the int64
  counts and, worse, the float64 IoU sums to 32 bits on the way. One process: `stats` unchanged.
  """
  if jax.process_count() == 1:
    return stats
  counts = [np.asarray(x, np.int64) for x in (stats.tp, stats.fp, stats.fn)]
  iou_bits = np.asarray(stats.iou_sum, np.float64).view(np.int64)
  packed = np.stack([*counts, iou_bits]).view(np.uint32)  # u32[4,2C]
  gathered = np.ascontiguousarray(multihost_utils.process_allgather(packed)).view(np.int64)
  tp, fp, fn, iou_bits = gathered.transpose(1, 0, 2)  # i64[P,4,C] -> 4 x i64[P,C]
  return PanopticStats(
    tp=tp.sum(0), fp=fp.sum(0), fn=fn.sum(0), iou_sum=iou_bits.view(np.float64).sum(0)
  )

"""Instance-segmentation metrics: COCO mask (and box) AP, computed on the host with pycocotools.

Lin et al., "Microsoft COCO: Common Objects in Context", ECCV 2014; the evaluation is the official
`pycocotools.cocoeval.COCOeval` (IoU thresholds 0.5:0.05:0.95, 101 recall points, at most 100
detections per image, area ranges small < 32² <= medium < 96² <= large). Per-class AP follows
detectron2's `COCOEvaluator._derive_coco_results`.

The ground truth and the detections are built in memory from per-image arrays: masks become
compressed RLEs, category id = label + 1 (COCO ids start at 1), image id = list index + 1.
As in detectron2, the detections of the mask evaluation carry no box, so that their area (which
decides whether an unmatched detection is ignored in APs/APm/APl) is the mask area; those of the
box evaluation carry only a box, and their area is the box area. Ground-truth areas are mask areas
in both, as in the COCO annotations.
"""

import contextlib
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_util
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

SUMMARY_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
IOU_TYPES = ("segm", "bbox")


def _to_numpy(instances: Mapping[str, Any], kind: str, index: int) -> dict[str, np.ndarray]:
  """Per-image dict of numpy or jax arrays -> numpy, checked for consistent lengths."""
  masks = np.asarray(instances["masks"]).astype(bool)
  if masks.ndim != 3:
    raise ValueError(f"{kind}[{index}]['masks'] must be [N,H,W], got shape {masks.shape}")
  out = {"masks": masks, "labels": np.asarray(instances["labels"], np.int64).reshape(-1)}
  if "scores" in instances:
    out["scores"] = np.asarray(instances["scores"], np.float64).reshape(-1)
  if "iscrowd" in instances:
    out["iscrowd"] = np.asarray(instances["iscrowd"]).astype(bool).reshape(-1)
  if "boxes" in instances:
    out["boxes"] = np.asarray(instances["boxes"], np.float64).reshape(-1, 4)
  for key, value in out.items():
    if len(value) != len(masks):
      raise ValueError(f"{kind}[{index}]['{key}'] has {len(value)} entries for {len(masks)} masks")
  return out


def _encode(masks: np.ndarray) -> list[dict[str, Any]]:
  """bool[N,H,W] -> N compressed RLEs."""
  return [mask_util.encode(np.asfortranarray(m.astype(np.uint8))) for m in masks]


def _xyxy_to_xywh(boxes: np.ndarray) -> list[list[float]]:
  """f64[N,4] (x1, y1, x2, y2) -> COCO [x, y, w, h] lists."""
  return [[x1, y1, x2 - x1, y2 - y1] for x1, y1, x2, y2 in boxes.tolist()]


def _ground_truth_coco(
  ground_truth: list[dict[str, np.ndarray]], label_ids: Sequence[int], names: Sequence[Any]
) -> COCO:
  images, annotations = [], []
  for image_id, gt in enumerate(ground_truth, start=1):
    height, width = gt["masks"].shape[1:]
    images.append({"id": image_id, "height": height, "width": width})
    rles = _encode(gt["masks"])
    boxes = _xyxy_to_xywh(gt["boxes"]) if "boxes" in gt else mask_util.toBbox(rles).tolist()
    iscrowd = gt.get("iscrowd", np.zeros(len(rles), bool))
    for rle, box, label, crowd in zip(rles, boxes, gt["labels"], iscrowd, strict=True):
      annotations.append(
        {
          "id": len(annotations) + 1,  # COCOeval reads id 0 as "unmatched"
          "image_id": image_id,
          "category_id": int(label) + 1,
          "segmentation": rle,
          "area": float(mask_util.area(rle)),
          "bbox": box,
          "iscrowd": int(crowd),
        }
      )
  categories = [
    {"id": label + 1, "name": str(name)} for label, name in zip(label_ids, names, strict=True)
  ]
  coco = COCO()
  coco.dataset = {"images": images, "annotations": annotations, "categories": categories}
  coco.createIndex()
  return coco


def _detections(predictions: list[dict[str, np.ndarray]], iou_type: str) -> list[dict[str, Any]]:
  results = []
  for image_id, pred in enumerate(predictions, start=1):
    rles = _encode(pred["masks"])
    if iou_type == "segm":
      regions = [{"segmentation": rle} for rle in rles]
    else:
      boxes = _xyxy_to_xywh(pred["boxes"]) if "boxes" in pred else mask_util.toBbox(rles).tolist()
      regions = [{"bbox": box} for box in boxes]
    for region, score, label in zip(regions, pred["scores"], pred["labels"], strict=True):
      results.append(
        {"image_id": image_id, "category_id": int(label) + 1, "score": float(score), **region}
      )
  return results


def _evaluate(
  gt: COCO, detections: list[dict[str, Any]], iou_type: str, names: Sequence[Any]
) -> dict[str, Any]:
  if detections:
    dt = gt.loadRes(detections)
  else:  # `loadRes` indexes the first result, so it cannot load none
    dt = COCO()
    dt.dataset = {"images": gt.dataset["images"], "annotations": [], "categories": []}
    dt.createIndex()
  coco_eval = COCOeval(gt, dt, iou_type)
  coco_eval.evaluate()
  coco_eval.accumulate()
  coco_eval.summarize()
  # pycocotools writes -1 where there is nothing to average (no ground truth in the slice).
  stats = coco_eval.stats[: len(SUMMARY_KEYS)]  # the AP half of the 12 (the rest is AR)
  out = {k: float(v) if v > -1 else float("nan") for k, v in zip(SUMMARY_KEYS, stats, strict=True)}
  # [T,R,K,A,M] -> area "all", maxDets 100; classes follow the sorted category ids, like `names`.
  precision = coco_eval.eval["precision"][:, :, :, 0, -1]
  per_class = {}
  for k, name in enumerate(names):
    p = precision[:, :, k]
    p = p[p > -1]
    per_class[name] = float(p.mean()) if p.size else float("nan")
  out["per_class_AP"] = per_class
  return out


def coco_mask_ap(
  predictions: Sequence[Mapping[str, Any]],
  ground_truth: Sequence[Mapping[str, Any]],
  *,
  class_names: Sequence[str] | None = None,
  iou_type: Sequence[str] = ("segm",),
) -> dict[str, Any]:
  """COCO mask AP (and optionally box AP) of per-image instance predictions.

  The mask evaluation always runs. The box evaluation runs too when `iou_type` contains "bbox" or
  every image's prediction has 'boxes'; images without 'boxes' then use their masks' boxes.

  Args:
    predictions: one dict per image: 'masks' bool[N,H,W], 'scores' f32[N], 'labels' i32[N] (class
      ids from 0), optionally 'boxes' f32[N,4] (x1, y1, x2, y2 in pixels, x2/y2 exclusive, so a mask
      filling columns 2..5 has x1 = 2, x2 = 6). N may be 0. Numpy or jax arrays; nonzero mask
      values are foreground.
    ground_truth: one dict per image, same order: 'masks' bool[M,H,W], 'labels' i32[M], optionally
      'iscrowd' bool[M] (crowd regions: detections on them are neither true nor false positives)
      and 'boxes' f32[M,4] (used by the box evaluation instead of the masks' boxes). M may be 0.
    class_names: name of each class id 0..C-1; per-class AP then covers all C classes, keyed by
      name. Without it, the classes are the label ids present in either list, keyed by id.
    iou_type: evaluations to run, from ("segm", "bbox"); "segm" always runs.

  Returns:
    {'AP', 'AP50', 'AP75', 'APs', 'APm', 'APl': mask AP in [0, 1], NaN where no ground truth
    falls in the slice; 'per_class_AP': {class: AP over IoU 0.5:0.95 at area "all", maxDets 100,
    NaN for a class without ground truth}}, plus 'bbox': the same keys for boxes, when run.
  """
  iou_type = (iou_type,) if isinstance(iou_type, str) else tuple(iou_type)
  if unknown := set(iou_type) - set(IOU_TYPES):
    raise ValueError(f"unknown iou_type {sorted(unknown)}; expected a subset of {IOU_TYPES}")
  if len(predictions) != len(ground_truth):
    raise ValueError(f"{len(predictions)} predictions for {len(ground_truth)} images")
  preds = [_to_numpy(p, "predictions", i) for i, p in enumerate(predictions)]
  gts = [_to_numpy(g, "ground_truth", i) for i, g in enumerate(ground_truth)]
  for i, (pred, gt) in enumerate(zip(preds, gts, strict=True)):
    if "scores" not in pred:
      raise ValueError(f"predictions[{i}] has no 'scores'")
    if pred["masks"].shape[1:] != gt["masks"].shape[1:]:
      raise ValueError(
        f"image {i}: prediction masks {pred['masks'].shape[1:]} vs ground truth "
        f"{gt['masks'].shape[1:]}"
      )

  present = sorted({int(x) for d in preds + gts for x in d["labels"]})
  if present and present[0] < 0:
    raise ValueError(f"negative label {present[0]}")
  if class_names is None:
    label_ids = names = present
  else:
    label_ids, names = range(len(class_names)), list(class_names)
    if present and present[-1] >= len(names):
      raise ValueError(f"label {present[-1]} outside the {len(names)} class_names")

  with contextlib.redirect_stdout(io.StringIO()):  # pycocotools reports progress with print
    gt_coco = _ground_truth_coco(gts, label_ids, names)
    result = _evaluate(gt_coco, _detections(preds, "segm"), "segm", names)
    if "bbox" in iou_type or (preds and all("boxes" in p for p in preds)):
      result["bbox"] = _evaluate(gt_coco, _detections(preds, "bbox"), "bbox", names)
  return result

"""Metrics: summable statistics computed under jit, turned into scores on the host; COCO AP and
panoptic quality, matched on the host; the click protocol of interactive segmentation."""

from segjax.metrics.boundary import boundary_confusion_stats, boundary_iou_scores
from segjax.metrics.instance import coco_mask_ap
from segjax.metrics.interactive import (
  click_ious,
  distance_transform_edt,
  interactive_scores,
  mask_iou,
  next_click,
  next_clicks,
  noc,
)
from segjax.metrics.panoptic import (
  PanopticStats,
  panoptic_quality,
  panoptic_scores,
  panoptic_stats,
  sum_across_processes,
)
from segjax.metrics.semantic import confusion_matrix, semantic_scores

__all__ = [
  "PanopticStats",
  "boundary_confusion_stats",
  "boundary_iou_scores",
  "click_ious",
  "coco_mask_ap",
  "confusion_matrix",
  "distance_transform_edt",
  "interactive_scores",
  "mask_iou",
  "next_click",
  "next_clicks",
  "noc",
  "panoptic_quality",
  "panoptic_scores",
  "panoptic_stats",
  "semantic_scores",
  "sum_across_processes",
]

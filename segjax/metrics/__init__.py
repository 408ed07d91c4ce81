"""Metrics: summable statistics computed under jit, turned into scores on the host; COCO AP and
panoptic quality, matched on the host."""

from segjax.metrics.boundary import boundary_confusion_stats, boundary_iou_scores
from segjax.metrics.instance import coco_mask_ap
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
  "coco_mask_ap",
  "confusion_matrix",
  "panoptic_quality",
  "panoptic_scores",
  "panoptic_stats",
  "semantic_scores",
  "sum_across_processes",
]

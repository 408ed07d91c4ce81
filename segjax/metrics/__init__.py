"""Metrics: summable statistics computed under jit, turned into scores on the host; COCO AP."""

from segjax.metrics.boundary import boundary_confusion_stats, boundary_iou_scores
from segjax.metrics.instance import coco_mask_ap
from segjax.metrics.semantic import confusion_matrix, semantic_scores

__all__ = [
  "boundary_confusion_stats",
  "boundary_iou_scores",
  "coco_mask_ap",
  "confusion_matrix",
  "semantic_scores",
]

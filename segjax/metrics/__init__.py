"""Metrics: summable statistics computed under jit, turned into scores on the host."""

from segjax.metrics.boundary import boundary_confusion_stats, boundary_iou_scores
from segjax.metrics.semantic import confusion_matrix, semantic_scores

__all__ = [
  "boundary_confusion_stats",
  "boundary_iou_scores",
  "confusion_matrix",
  "semantic_scores",
]

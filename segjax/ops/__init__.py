"""Detection ops with static shapes: boxes, NMS, anchors, matching, RoIAlign, mask pasting."""

from segjax.ops.anchors import anchors_for_level, generate_anchors
from segjax.ops.boxes import BoxCoder, box_area, box_iou, clip_boxes
from segjax.ops.masks import paste_masks, paste_masks_soft
from segjax.ops.matching import match, sample_balanced, sampled_indices
from segjax.ops.nms import batched_nms, nms
from segjax.ops.roi_align import assign_levels, multilevel_roi_align, roi_align

__all__ = [
  "BoxCoder",
  "anchors_for_level",
  "assign_levels",
  "batched_nms",
  "box_area",
  "box_iou",
  "clip_boxes",
  "generate_anchors",
  "match",
  "multilevel_roi_align",
  "nms",
  "paste_masks",
  "paste_masks_soft",
  "roi_align",
  "sample_balanced",
  "sampled_indices",
]

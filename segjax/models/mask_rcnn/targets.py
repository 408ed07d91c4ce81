"""Training targets of Mask R-CNN, per image and with fixed shapes (vmap over the batch).

Ground truth is padded to G instances: `gt_boxes: f32[G,4]` (x1, y1, x2, y2 pixels),
`gt_labels: i32[G]` (0..K-1), `gt_masks: bool[G,H,W]`, `gt_valid: bool[G]`.
"""

import jax
import jax.numpy as jnp

from segjax.ops.boxes import BoxCoder, box_iou
from segjax.ops.matching import match, sample_balanced, sampled_indices
from segjax.ops.roi_align import roi_align


def _masked_iou(gt_boxes, gt_valid, boxes, valid):
  """IoU [G,N] with invalid ground truth and invalid boxes at -1: never matched."""
  iou = box_iou(gt_boxes, boxes)
  return jnp.where(gt_valid[:, None] & valid[None, :], iou, -1.0)


def rpn_targets(anchors, gt_boxes, gt_valid, key, *, num_samples=256, positive_fraction=0.5):
  """Anchor labels and box targets (detectron2's RPN: IoU >= 0.7 positive, < 0.3 negative, each
  ground truth's best anchors positive too; 256 anchors sampled, at most half positive).

  Returns:
    labels: i32[N] 1 positive, 0 negative, -1 not sampled; deltas: f32[N,4] towards the matched
    ground truth (weights 1).
  """
  valid = jnp.ones(anchors.shape[0], bool)
  iou = _masked_iou(gt_boxes, gt_valid, anchors, valid)
  matched, match_labels = match(
    iou, gt_valid, thresholds=(0.3, 0.7), labels=(0, -1, 1), allow_low_quality_matches=True
  )
  positive, negative = sample_balanced(
    match_labels, key, num_samples=num_samples, positive_fraction=positive_fraction
  )
  labels = jnp.where(positive, 1, jnp.where(negative, 0, -1))
  deltas = BoxCoder().encode(anchors, gt_boxes[matched])
  return labels, deltas


def sample_rois(
  proposals,
  proposal_valid,
  gt_boxes,
  gt_labels,
  gt_valid,
  key,
  *,
  num_samples=512,
  positive_fraction=0.25,
  iou_threshold=0.5,
):
  """Proposals (with the ground truth added, as detectron2 does) matched at IoU 0.5 and sampled:
  `num_samples` RoIs, at most a quarter foreground, foreground first.

  Returns a dict: `boxes f32[S,4]`, `classes i32[S]` (0 background, 1..K), `matched i32[S]`
  (ground-truth index), `valid bool[S]`.
  """
  boxes = jnp.concatenate([proposals, gt_boxes])
  valid = jnp.concatenate([proposal_valid, gt_valid])
  iou = _masked_iou(gt_boxes, gt_valid, boxes, valid)
  matched, match_labels = match(
    iou, gt_valid, thresholds=(iou_threshold,), labels=(0, 1), allow_low_quality_matches=False
  )
  positive, negative = sample_balanced(
    match_labels,
    key,
    num_samples=num_samples,
    positive_fraction=positive_fraction,
    valid=valid,
  )
  index, sampled = sampled_indices(positive, negative, num_samples)
  classes = jnp.where(positive[index] & sampled, gt_labels[matched[index]] + 1, 0)
  return {
    "boxes": jax.lax.stop_gradient(boxes[index]),
    "classes": classes.astype(jnp.int32),
    "matched": matched[index],
    "valid": sampled,
  }


def mask_targets(gt_masks, matched, boxes, *, size=28):
  """Each RoI's ground-truth mask cropped to the RoI and resampled to size x size (RoIAlign,
  aligned, then >= 0.5), as detectron2's `BitMasks.crop_and_resize`.

  `gt_masks: bool[G,H,W]`, `matched: i32[R]`, `boxes: f32[R,4]` -> `f32[R,size,size]` in {0, 1}.
  """

  def crop(mask, box):
    pooled = roi_align(
      mask[..., None].astype(jnp.float32), box[None], output_size=size, spatial_scale=1.0
    )
    return (pooled[0, ..., 0] >= 0.5).astype(jnp.float32)

  return jax.vmap(crop)(gt_masks[matched], boxes)

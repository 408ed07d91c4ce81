"""Mask R-CNN's losses (detectron2's), from the predictions and targets the model returns."""

import jax
import jax.numpy as jnp


def _bce_with_logits(logits, targets):
  return jnp.maximum(logits, 0) - logits * targets + jnp.log1p(jnp.exp(-jnp.abs(logits)))


def _masked_mean(values, mask, count=None):
  """Sum of `values` where `mask` (broadcast over trailing axes) over `count` (default: the
  mask's count). `where`, not a product: targets of padded boxes may be infinite."""
  count = jnp.sum(mask) if count is None else count
  mask = mask.reshape(mask.shape + (1,) * (values.ndim - mask.ndim))
  return jnp.sum(jnp.where(mask, values, 0.0)) / jnp.maximum(count, 1.0)


def mask_rcnn_losses(outputs: dict[str, jax.Array]) -> dict[str, jax.Array]:
  """RPN objectness BCE and L1 box regression over the sampled anchors, RoI cross-entropy and
  class-specific L1 box regression over the sampled RoIs, and per-RoI mask BCE on the
  ground-truth class's mask only.

  `outputs`: `segjax.models.MaskRCNN`'s training outputs (`rpn_*`, `roi_*`, `mask_*`).
  Returns `loss_rpn_cls`, `loss_rpn_box`, `loss_cls`, `loss_box`, `loss_mask`: f32[] each.
  """
  # RPN: normalised by the anchors sampled over the batch (detectron2 divides by the number it
  # asks for, 256 per image, which differs only when too few anchors can be sampled).
  rpn_labels = outputs["rpn_labels"]
  rpn_count = jnp.maximum(jnp.sum(rpn_labels >= 0), 1.0)
  rpn_cls = _masked_mean(
    _bce_with_logits(outputs["rpn_logits"], (rpn_labels == 1).astype(jnp.float32)),
    rpn_labels >= 0,
    rpn_count,
  )
  rpn_box = _masked_mean(
    jnp.abs(outputs["rpn_deltas"] - outputs["rpn_box_targets"]), rpn_labels == 1, rpn_count
  )
  # RoI heads: cross-entropy over sampled RoIs; box loss on the ground-truth class's deltas of
  # foreground RoIs, normalised by all sampled RoIs.
  valid, classes = outputs["roi_valid"], outputs["roi_classes"]
  log_probs = jax.nn.log_softmax(outputs["roi_logits"])
  nll = -jnp.take_along_axis(log_probs, classes[..., None], -1)[..., 0]
  roi_count = jnp.maximum(jnp.sum(valid), 1.0)
  roi_cls = _masked_mean(nll, valid, roi_count)
  fg_deltas = jnp.take_along_axis(
    outputs["roi_deltas"], jnp.maximum(classes - 1, 0)[..., None, None], axis=2
  )[:, :, 0]
  roi_box = _masked_mean(
    jnp.abs(fg_deltas - outputs["roi_box_targets"]), valid & (classes > 0), roi_count
  )
  # Masks: the logits of the ground-truth class only.
  mask_logits = jnp.take_along_axis(
    outputs["mask_logits"],
    jnp.maximum(outputs["mask_classes"] - 1, 0)[:, :, None, None, None],
    axis=-1,
  )[..., 0]
  per_roi = jnp.mean(_bce_with_logits(mask_logits, outputs["mask_targets"]), axis=(2, 3))
  mask = _masked_mean(per_roi, outputs["mask_valid"])
  return {
    "loss_rpn_cls": rpn_cls,
    "loss_rpn_box": rpn_box,
    "loss_cls": roi_cls,
    "loss_box": roi_box,
    "loss_mask": mask,
  }

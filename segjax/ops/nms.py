"""Greedy non-maximum suppression with static output shapes (jit- and vmap-friendly).

Kept set and order are those of torchvision's `nms`: boxes visited by score, descending, a box
dropped when its IoU with an already kept box exceeds `iou_threshold`. Ties in score are broken
by index, lower first (torchvision sorts with a stable descending sort on CPU and CUDA alike).
Results come as a fixed-size list of `max_output` indices plus a validity mask.
"""

import jax
import jax.numpy as jnp
from jax import lax

from segjax.ops.boxes import box_iou


def nms(
  boxes: jax.Array,
  scores: jax.Array,
  *,
  iou_threshold: float,
  max_output: int,
  valid: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
  """Greedy NMS of one image's boxes.

  Boxes that are invalid, or whose score is -inf or NaN, are never kept and suppress nothing.
  Degenerate boxes (zero area) have IoU 0 with everything, so they never suppress or get suppressed.

  Args:
    boxes: f32[N,4] boxes.
    scores: f32[N] scores.
    iou_threshold: a box is suppressed when its IoU with a kept box is strictly greater (a Python
      float, or a traced scalar).
    max_output: length of the output (static); kept boxes past it are dropped.
    valid: bool[N] boxes that take part; all when None.

  Returns:
    indices: i32[max_output] into `boxes`, the kept boxes by score, descending; 0 for padding.
    keep_valid: bool[max_output] which entries of `indices` are real (a prefix).
  """
  return _greedy_nms(boxes, scores, None, iou_threshold, max_output, valid)


def batched_nms(
  boxes: jax.Array,
  scores: jax.Array,
  classes: jax.Array,
  *,
  iou_threshold: float,
  max_output: int,
  valid: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
  """NMS independently per class, merged by score, descending (ties: lower index first).

  The result equals torchvision's `batched_nms`. Instead of its coordinate-offset trick, overlaps
  between boxes of different classes are masked out of the IoU matrix: the same kept set, without
  the float32 rounding that offsets of class × image size bring to the IoUs (or the cross-class
  overlaps that boxes at negative coordinates can cause).

  Args:
    boxes: f32[N,4] boxes.
    scores: f32[N] scores.
    classes: i32[N] class of each box.
    iou_threshold, max_output, valid: as for `nms`.

  Returns:
    indices: i32[max_output], keep_valid: bool[max_output], as for `nms`.
  """
  return _greedy_nms(boxes, scores, classes, iou_threshold, max_output, valid)


def _greedy_nms(boxes, scores, classes, iou_threshold, max_output, valid):
  n = boxes.shape[0]
  boxes = boxes.astype(jnp.float32)
  scores = scores.astype(jnp.float32)
  candidate = scores > -jnp.inf  # False for NaN
  if valid is not None:
    candidate &= valid
  # -0.0 sorts before 0.0 in XLA's total order; make them tie.
  key = jnp.where(candidate, jnp.where(scores == 0, 0.0, scores), -jnp.inf)
  order = jnp.argsort(-key, stable=True).astype(jnp.int32)
  sorted_boxes = boxes[order]
  overlap = box_iou(sorted_boxes, sorted_boxes) > iou_threshold
  if classes is not None:
    sorted_classes = classes[order]
    overlap &= sorted_classes[:, None] == sorted_classes[None, :]
  later = jnp.arange(n)[None, :] > jnp.arange(n)[:, None]
  overlap &= later

  def visit(i, keep):
    # keep[i] is final by now: every box that could suppress it came earlier.
    return keep & ~(overlap[i] & keep[i])

  keep = lax.fori_loop(0, n, visit, candidate[order])
  return _first_kept(keep, order, max_output)


def _first_kept(keep, order, max_output):
  """The first `max_output` entries of `order` where `keep`, padded with index 0."""
  slot = jnp.where(keep, jnp.cumsum(keep) - 1, max_output)
  indices = jnp.zeros(max_output, jnp.int32).at[slot].set(order, mode="drop")
  keep_valid = jnp.arange(max_output) < jnp.sum(keep)
  return indices, keep_valid

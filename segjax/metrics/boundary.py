"""Boundary IoU for semantic segmentation.

Cheng, Girshick, Dollár, Berg & Kirillov, "Boundary IoU: Improving Object-Centric Image
Segmentation Evaluation", CVPR 2021. Reference code: github.com/bowenc0221/boundary-iou-api,
`boundary_iou/utils/boundary_utils.py::mask_to_boundary`.

The boundary region of a binary mask is the mask minus its erosion, as in the reference:

  d = max(1, round(dilation_ratio * sqrt(H**2 + W**2)))
  padded = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
  eroded = cv2.erode(padded, np.ones((3, 3)), iterations=d)[1:H+1, 1:W+1]
  boundary = mask - eroded

`cv2.erode`'s own border value is +inf (the border never erodes), so the only zeros outside the
image are the explicit 1-pixel ring. Iterating a 3x3 square d times is a (2d+1)x(2d+1) square
erosion (OpenCV even rewrites it as one), and any (2d+1)-window that leaves the image contains the
ring, since windows are contiguous. Hence: a pixel survives iff every pixel within Chebyshev
distance d is inside the image and in the mask, i.e. a (2d+1)^2 square erosion with the outside
of the image treated as background, however far it extends. Python's `round` (half to even)
matches the reference's `round(np.float64)`.

All classes are handled in one pass over the class map instead of one erosion per class: for a
pixel of class c, "the window lies inside the image and is entirely class c" is the same as "the
window, padded with a no-class value, has min == max". The cost is independent of C.
"""

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from segjax.metrics.semantic import nanmean, safe_divide, valid_label_mask

# Class id for "no class": image padding, void pixels. Never in [0, C).
NO_CLASS = -1


def boundary_dilation(height: int, width: int, dilation_ratio: float = 0.02) -> int:
  """Erosion radius d of the reference: max(1, round(dilation_ratio * image diagonal))."""
  # h*h + w*w is exact in float64, so this is bit-identical to the reference's np.sqrt.
  return max(1, round(dilation_ratio * math.sqrt(height * height + width * width)))


def class_boundary(class_map: jax.Array, dilation: int) -> jax.Array:
  """Pixels on the boundary region of their own class's mask.

  For every class c, `(class_map == c) & class_boundary(class_map, d)` is the reference
  `mask_to_boundary(class_map == c)` with erosion radius d (see the module docstring).

  Args:
    class_map: int[...,H,W] class ids; ids outside [0, C) (e.g. `NO_CLASS`) belong to no class.
    dilation: erosion radius d >= 1 (static).

  Returns:
    bool[...,H,W]: True where the (2d+1)^2 window around the pixel leaves the image or holds
    another id. Meaningful only at pixels whose id is a class.
  """
  lead = class_map.ndim - 2
  x = jnp.pad(class_map, [(0, 0)] * lead + [(dilation, dilation)] * 2, constant_values=NO_CLASS)
  k = 2 * dilation + 1

  def square_reduce(op, identity):
    # Separable: a k x k square window is a k x 1 then a 1 x k window, O(k) instead of O(k^2).
    init = jnp.array(identity, x.dtype)
    y = lax.reduce_window(x, init, op, (1,) * lead + (k, 1), (1,) * (lead + 2), "VALID")
    return lax.reduce_window(y, init, op, (1,) * lead + (1, k), (1,) * (lead + 2), "VALID")

  info = jnp.iinfo(x.dtype)
  return square_reduce(lax.min, info.max) != square_reduce(lax.max, info.min)


@functools.partial(jax.jit, static_argnames=("dilation_ratio",))
def mask_to_boundary(mask: jax.Array, *, dilation_ratio: float = 0.02) -> jax.Array:
  """Boundary region of binary masks, as the reference `mask_to_boundary`.

  Args:
    mask: bool[...,H,W] binary masks (each [H,W] slice is one mask).
    dilation_ratio: erosion radius as a fraction of the image diagonal (static).

  Returns:
    bool[...,H,W] boundary region (mask minus its erosion).
  """
  d = boundary_dilation(*mask.shape[-2:], dilation_ratio)
  mask = mask.astype(bool)
  return mask & class_boundary(jnp.where(mask, 0, NO_CLASS), d)


def class_counts(class_map: jax.Array, weight: jax.Array, num_classes: int) -> jax.Array:
  """i32[C]: per class, the number of pixels with `weight` set; ids outside [0, C) are dropped."""
  kept = weight & (class_map >= 0) & (class_map < num_classes)
  return jnp.bincount(class_map.ravel(), weights=kept.ravel().astype(jnp.int32), length=num_classes)


@functools.partial(jax.jit, static_argnames=("num_classes", "dilation_ratio"))
def boundary_confusion_stats(
  pred: jax.Array,
  labels: jax.Array,
  num_classes: int,
  *,
  ignore_index: int = 255,
  dilation_ratio: float = 0.02,
) -> tuple[jax.Array, jax.Array]:
  """Per-class boundary intersection and union counts, summed over the batch.

  For each class c and image, with valid = (labels != ignore_index) & (labels in [0, C)):
    G_c = (labels == c) & valid,  P_c = (pred == c) & valid,
    Bg = boundary(G_c),  Bp = boundary(P_c),
  and the counts are |Bg ∩ Bp| and |Bg ∪ Bp|, summed over the batch. Counts add up across
  batches and devices, so the dataset-level Boundary IoU of class c is Σ inter / Σ union
  (accumulated like the confusion matrix for mIoU).

  Void handling: void pixels (and, defensively, labels outside [0, C)) belong to no class in
  either mask, exactly like pixels outside the image. Masking P_c as well as G_c means the edge
  of a void region is a boundary of both masks, so a prediction that is right up to the void edge
  matches there, and predictions inside void are never counted. Both boundary regions are then
  subsets of the valid region. Predictions outside [0, C) belong to no class.

  Args:
    pred: i32[B,H,W] predicted class ids.
    labels: i32[B,H,W] ground-truth class ids.
    num_classes: number of classes C (static).
    ignore_index: void label.
    dilation_ratio: boundary width as a fraction of the image diagonal (static); the reference's
      0.02 by default.

  Returns:
    (intersection i32[C], union i32[C]).
  """
  pred, labels = jnp.asarray(pred, jnp.int32), jnp.asarray(labels, jnp.int32)
  d = boundary_dilation(*labels.shape[-2:], dilation_ratio)
  valid = valid_label_mask(labels, num_classes, ignore_index)
  gt = jnp.where(valid, labels, NO_CLASS)
  pr = jnp.where(valid, pred, NO_CLASS)
  gt_boundary = class_boundary(gt, d)
  pr_boundary = class_boundary(pr, d)
  intersection = class_counts(gt, gt_boundary & pr_boundary & (gt == pr), num_classes)
  gt_total = class_counts(gt, gt_boundary, num_classes)
  pr_total = class_counts(pr, pr_boundary, num_classes)
  return intersection, gt_total + pr_total - intersection


def boundary_iou_scores(intersection: Any, union: Any) -> dict[str, Any]:
  """Boundary IoU from summed `boundary_confusion_stats` counts. Host-side numpy.

  Args:
    intersection: int[C] boundary intersection counts (numpy or jax).
    union: int[C] boundary union counts.

  Returns:
    Dict with f64[C] `per_class_boundary_iou` (NaN where union == 0: the class has no boundary
    in either prediction or ground truth) and float `boundary_iou`, its mean over the classes
    with union > 0 (NaN if there are none).
  """
  per_class = safe_divide(np.asarray(intersection, np.int64), np.asarray(union, np.int64))
  return {"boundary_iou": nanmean(per_class), "per_class_boundary_iou": per_class}

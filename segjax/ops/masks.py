"""Pasting Mask R-CNN's per-box masks into the image, as detectron2's `paste_masks_in_image`.

detectron2 (`detectron2/layers/mask_ops.py`, the `_do_paste_mask` path) maps the centre of image
pixel `(x, y)` into the box's mask grid, normalised to [-1, 1] across the box:

  gx = (x + 0.5 - x0) / (x1 - x0) · 2 - 1,   gy = (y + 0.5 - y0) / (y1 - y0) · 2 - 1,

samples the M×M mask there with `F.grid_sample(mode="bilinear", padding_mode="zeros",
align_corners=False)`, i.e. at mask pixel `u = (gx + 1) · M / 2 - 0.5` with out-of-mask neighbours
read as 0, and keeps pixels with `value >= threshold`. The mask's cells thus tile the box exactly,
and values fade to 0 over half a cell outside it.

Differences from detectron2:
- On CPU detectron2 computes only the window `[floor(min x0) - 1, ceil(max x1) + 1)` (likewise y)
  of the boxes of a chunk and leaves the rest 0; here every pixel is sampled, as on its GPU path.
  Outside that window a pixel's centre lies outside its box, where the value is below half the
  mask's maximum, so thresholded results agree for probabilities and `threshold >= 0.5`.
- A box of zero width or height pastes zeros; detectron2's `grid_sample` returns NaN there, which
  fails the threshold, so the thresholded masks agree (empty).
- `threshold < 0` (detectron2's uint8 visualisation) is not offered: use `paste_masks_soft`.
"""

import jax
import jax.numpy as jnp
from jax import lax


def _axis_weights(low: jax.Array, high: jax.Array, pixels: int, cells: int) -> jax.Array:
  """Bilinear weights of the mask cells along one axis for each image pixel.

  Args:
    low, high: f32[R] box edges along the axis, in image pixels.
    pixels: image size along the axis.
    cells: mask size along the axis.

  Returns:
    f32[R,pixels,cells]: row p holds the weights of the (at most two) cells that pixel p's centre
    falls between; cells outside the mask are dropped (zero padding).
  """
  centre = jnp.arange(pixels, dtype=jnp.float32) + 0.5
  grid = (centre[None, :] - low[:, None]) / (high - low)[:, None] * 2 - 1
  # torch's CPU unnormalisation for align_corners=False.
  u = (grid + 1) * (cells / 2) - 0.5
  # Bilinear weights as a tent around each cell: continuous in `u`, so no floor() that XLA could
  # round differently where it recomputes `u` (see segjax.ops.roi_align), and 0 for the
  # infinite/NaN `u` of empty boxes.
  distance = jnp.abs(u[..., None] - jnp.arange(cells, dtype=jnp.float32))
  return jnp.where(distance < 1, 1 - distance, 0.0)


def paste_masks_soft(masks: jax.Array, boxes: jax.Array, *, height: int, width: int) -> jax.Array:
  """Masks resampled into their boxes in the image, before thresholding.

  Args:
    masks: f32[R,M,M] mask probabilities (after the sigmoid) on each box's grid.
    boxes: f32[R,4] boxes `(x1, y1, x2, y2)` in image pixels.
    height, width: image size.

  Returns:
    f32[R,height,width] pasted probabilities, 0 away from the boxes.
  """
  masks = jnp.asarray(masks, jnp.float32)
  boxes = jnp.asarray(boxes, jnp.float32)
  weight_y = _axis_weights(boxes[:, 1], boxes[:, 3], height, masks.shape[1])
  weight_x = _axis_weights(boxes[:, 0], boxes[:, 2], width, masks.shape[2])
  # HIGHEST: no TF32/bf16 passes on accelerators, which would move values across the threshold.
  return jnp.einsum("rym,rmn,rxn->ryx", weight_y, masks, weight_x, precision=lax.Precision.HIGHEST)


def paste_masks(
  masks: jax.Array, boxes: jax.Array, *, height: int, width: int, threshold: float = 0.5
) -> jax.Array:
  """Binary instance masks in the image: `paste_masks_soft(...) >= threshold`.

  Args:
    masks: f32[R,M,M] mask probabilities (after the sigmoid) on each box's grid.
    boxes: f32[R,4] boxes `(x1, y1, x2, y2)` in image pixels.
    height, width: image size.
    threshold: minimum pasted probability of a mask pixel.

  Returns:
    bool[R,height,width] masks.
  """
  return paste_masks_soft(masks, boxes, height=height, width=width) >= threshold

"""RoIAlign on one feature map or an FPN pyramid, with torchvision's exact semantics.

`roi_align` reproduces `torchvision.ops.roi_align` (its CPU kernel `roi_align_kernel.cpp`) for a
fixed `sampling_ratio > 0`; `multilevel_roi_align` pools each box from the pyramid level that
detectron2's `assign_boxes_to_levels` picks for it. Boxes are `(x1, y1, x2, y2)` in pixels of the
input image. Shapes are static, so both functions jit; gradients flow into the features only.

The bilinear weight of a sample factorises into a y part and an x part, and the kernel's
"out of the map contributes zero" rule (`y < -1 || y > H || x < -1 || x > W`) is a product of one
test per axis. Averaged over a bin's samples, each roi's pooling is then `Wy · F · Wxᵀ` with dense
weight matrices `Wy: f32[out_h,H]`, `Wx: f32[out_w,W]`, costing `R·out·H·W·C` multiply-adds
(512 rois of 7×7 from a 128×128×256 map: 0.9 s forward on 2 CPU cores; a matmul on accelerators).

Gathering only the 4 neighbours of each sample would cost less, but then the gather's indices and
the interpolation weights both derive from `floor(coordinate)`, and XLA may recompute the
coordinate in each fusion that uses it with different rounding (FMA or not): for a sample at an
integer, the weights then go to the wrong rows. The dense weights are a continuous function of the
coordinate (a tent around every row), which no such rounding can break.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax


def _pair(output_size: int | tuple[int, int]) -> tuple[int, int]:
  out_h, out_w = (output_size, output_size) if isinstance(output_size, int) else output_size
  if out_h < 1 or out_w < 1:
    raise ValueError(f"output_size must be positive, got {output_size}")
  return int(out_h), int(out_w)


def _axis_weights(
  start: jax.Array, end: jax.Array, size: int, bins: int, grid: int, aligned: bool
) -> jax.Array:
  """Interpolation weights along one axis, averaged over the `grid` samples of each bin.

  Args:
    start, end: f32[R] roi edges in feature-map pixels (scaled, offset already subtracted).
    size: length of the feature map along this axis.
    bins: output cells along the axis.
    grid: samples per cell along the axis.
    aligned: whether the roi may be smaller than one pixel (otherwise it is widened to 1).

  Returns:
    f32[R,bins,size]: row b holds the mean over bin b's samples of their weights on the map's
    rows (0 for samples off the map).
  """
  length = end - start
  if not aligned:
    length = jnp.maximum(length, 1.0)
  bin_size = (length / bins)[:, None, None]
  cell = jnp.arange(bins, dtype=jnp.float32)[None, :, None]
  sub = jnp.arange(grid, dtype=jnp.float32)[None, None, :] + 0.5
  coord = start[:, None, None] + cell * bin_size + sub * bin_size / grid  # [R, bins, grid]
  inside = (coord >= -1.0) & (coord <= size)
  # Below 0 reads row 0; at or past the last row reads that row only.
  coord = jnp.clip(coord, 0.0, size - 1.0)
  distance = jnp.abs(coord[..., None] - jnp.arange(size, dtype=jnp.float32))
  tent = jnp.where(distance < 1.0, 1.0 - distance, 0.0)
  return jnp.sum(jnp.where(inside[..., None], tent, 0.0), axis=2) / grid


def _pool(
  features: jax.Array,
  scaled: jax.Array,
  out_h: int,
  out_w: int,
  sampling_ratio: int,
  aligned: bool,
) -> jax.Array:
  """RoIAlign of rois f32[R,4] already in feature-map pixels, from features f32[H,W,C]."""
  height, width, _ = features.shape
  weight_y = _axis_weights(scaled[:, 1], scaled[:, 3], height, out_h, sampling_ratio, aligned)
  weight_x = _axis_weights(scaled[:, 0], scaled[:, 2], width, out_w, sampling_ratio, aligned)
  # HIGHEST: no TF32/bf16 passes on accelerators.
  return jnp.einsum(
    "rhy,yxc,rwx->rhwc", weight_y, features, weight_x, precision=lax.Precision.HIGHEST
  )


def _scaled_boxes(boxes: jax.Array, spatial_scale: float, aligned: bool) -> jax.Array:
  boxes = lax.stop_gradient(jnp.asarray(boxes, jnp.float32))
  return boxes * spatial_scale - (0.5 if aligned else 0.0)


def _check_sampling_ratio(sampling_ratio: int) -> None:
  if sampling_ratio <= 0:
    raise ValueError(
      f"sampling_ratio must be positive (adaptive grids have data-dependent shapes), "
      f"got {sampling_ratio}"
    )


def roi_align(
  features: jax.Array,
  boxes: jax.Array,
  *,
  output_size: int | tuple[int, int],
  spatial_scale: float,
  sampling_ratio: int = 2,
  aligned: bool = True,
) -> jax.Array:
  """`torchvision.ops.roi_align` of one image's feature map, for a fixed sampling grid.

  For each box, in feature-map pixels: the corners are `box · spatial_scale - 0.5` (`aligned`; no
  offset otherwise, and then the roi is widened to at least 1×1). The roi is cut into
  `out_h × out_w` bins, each sampled on a `sampling_ratio × sampling_ratio` grid at
  `y = y1 + ph·bin_h + (iy + 0.5)·bin_h / sampling_ratio` (likewise x). A sample with `y < -1`,
  `y > H`, `x < -1` or `x > W` contributes 0; otherwise coordinates below 0 are clamped to 0, those
  at or past the last row/column read that row/column, and the map is interpolated bilinearly. A
  bin is the mean of its samples (the off-map ones count as zeros).

  torchvision's adaptive grid (`sampling_ratio <= 0`: `ceil(roi_size / output_size)` samples) makes
  shapes depend on the boxes' values, so it is not supported. No gradient flows into `boxes`.

  Args:
    features: f32[H,W,C] feature map.
    boxes: f32[R,4] boxes `(x1, y1, x2, y2)` in input-image pixels.
    output_size: `out` or `(out_h, out_w)`.
    spatial_scale: feature-map pixels per image pixel (1 / stride).
    sampling_ratio: samples per bin along each axis, at least 1.
    aligned: shift boxes by half a pixel (detectron2's ROIAlignV2); False is the original RoIAlign.

  Returns:
    f32[R,out_h,out_w,C] pooled features.
  """
  _check_sampling_ratio(sampling_ratio)
  out_h, out_w = _pair(output_size)
  scaled = _scaled_boxes(boxes, spatial_scale, aligned)
  return _pool(features, scaled, out_h, out_w, sampling_ratio, aligned)


def assign_levels(
  boxes: jax.Array,
  *,
  min_level: int = 2,
  max_level: int = 5,
  canonical_size: float = 224.0,
  canonical_level: int = 4,
) -> jax.Array:
  """FPN level of each box, as detectron2's `assign_boxes_to_levels` (Eqn. 1 of the FPN paper).

  `floor(canonical_level + log2(sqrt(area) / canonical_size + 1e-8))`, clamped to
  `[min_level, max_level]`: a 224×224 box goes to level 4, 112×112 to 3, 448×448 to 5. A box of
  negative area (detectron2: NaN, then an undefined integer) goes to `min_level`.

  Args:
    boxes: f32[R,4] boxes `(x1, y1, x2, y2)` in input-image pixels.
    min_level, max_level: the pyramid's finest and coarsest levels.
    canonical_size: box size (sqrt of area) that maps to `canonical_level`.
    canonical_level: level of a canonical box.

  Returns:
    i32[R] levels in `[min_level, max_level]`.
  """
  boxes = jnp.asarray(boxes, jnp.float32)
  area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
  size = jnp.sqrt(jnp.maximum(area, 0.0))
  level = jnp.floor(canonical_level + jnp.log2(size / canonical_size + 1e-8))
  return jnp.clip(level, min_level, max_level).astype(jnp.int32)


def multilevel_roi_align(
  features: Sequence[jax.Array],
  boxes: jax.Array,
  *,
  strides: Sequence[int] = (4, 8, 16, 32),
  output_size: int | tuple[int, int],
  sampling_ratio: int = 2,
  aligned: bool = True,
  canonical_size: float = 224.0,
  canonical_level: int = 4,
  min_level: int = 2,
) -> jax.Array:
  """RoIAlign of each box from its FPN level (detectron2's `ROIPooler` with `ROIAlignV2`).

  Box r is pooled as `roi_align(features[l - min_level], ..., spatial_scale=1 / strides[...])` at
  `l = assign_levels(boxes)[r]`, the levels running from `min_level` to
  `min_level + len(features) - 1`. Every box is pooled from every level (static shapes) and its
  own level selected, so gradients reach only that level.

  Args:
    features: per level, f32[H_l,W_l,C] feature map, finest first.
    boxes: f32[R,4] boxes `(x1, y1, x2, y2)` in input-image pixels.
    strides: per level, image pixels per feature-map pixel.
    output_size, sampling_ratio, aligned: as in `roi_align`.
    canonical_size, canonical_level: as in `assign_levels`.
    min_level: level of `features[0]`.

  Returns:
    f32[R,out_h,out_w,C] pooled features.
  """
  if len(strides) != len(features):
    raise ValueError(f"{len(features)} feature maps but {len(strides)} strides")
  _check_sampling_ratio(sampling_ratio)
  out_h, out_w = _pair(output_size)
  levels = assign_levels(
    boxes,
    min_level=min_level,
    max_level=min_level + len(features) - 1,
    canonical_size=canonical_size,
    canonical_level=canonical_level,
  )
  # Boxes start on the finest level and move to the coarser one they are assigned to, if any.
  pooled = None
  for level, (level_features, stride) in enumerate(zip(features, strides, strict=True)):
    scaled = _scaled_boxes(boxes, 1.0 / stride, aligned)
    here = _pool(level_features, scaled, out_h, out_w, sampling_ratio, aligned)
    mine = (levels == min_level + level)[:, None, None, None]
    pooled = here if pooled is None else jnp.where(mine, here, pooled)
  return pooled

"""Anchor boxes of detectron2's `DefaultAnchorGenerator`, computed on the host (NumPy, static).

Per feature level: cell anchors centred at the origin, one per aspect ratio (`h/w = ratio`, area
`size²`), shifted to `(x·stride + offset·stride, y·stride + offset·stride)` for every feature
cell, ordered (y, x, anchor) row-major with the anchors innermost, as detectron2 flattens them.
"""

import math
from collections.abc import Sequence

import numpy as np


def anchors_for_level(
  size: float,
  stride: int,
  feature_hw: tuple[int, int],
  *,
  ratios: Sequence[float] = (0.5, 1.0, 2.0),
  offset: float = 0.0,
) -> np.ndarray:
  """Anchors f32[H*W*A, 4] of one level, A = len(ratios), (H, W) = feature_hw.

  With offset 0 the anchor of cell (0, 0), ratio 1 is centred on pixel corner (0, 0), as in
  detectron2's default (`offset` 0.5 centres it on the cell instead).
  """
  cell = []
  for ratio in ratios:
    w = math.sqrt(size**2 / ratio)
    h = ratio * w
    cell.append((-w / 2, -h / 2, w / 2, h / 2))
  # float32 throughout, as detectron2 adds its float32 cell anchors and shifts.
  cell = np.asarray(cell, np.float32)
  height, width = feature_hw
  shifts_x = (np.arange(width, dtype=np.float32) * stride + offset * stride).astype(np.float32)
  shifts_y = (np.arange(height, dtype=np.float32) * stride + offset * stride).astype(np.float32)
  shift_y, shift_x = np.meshgrid(shifts_y, shifts_x, indexing="ij")
  shifts = np.stack([shift_x, shift_y, shift_x, shift_y], axis=-1).reshape(-1, 1, 4)
  return (shifts + cell[None]).reshape(-1, 4)


def generate_anchors(
  image_hw: tuple[int, int],
  *,
  strides: Sequence[int] = (4, 8, 16, 32, 64),
  sizes: Sequence[float] = (32, 64, 128, 256, 512),
  ratios: Sequence[float] = (0.5, 1.0, 2.0),
  offset: float = 0.0,
) -> list[np.ndarray]:
  """Anchors of each FPN level (P2–P6 by default), f32[H_l*W_l*A, 4] with H_l = ceil(H/stride_l).

  One size per level, as detectron2's FPN config (`SIZES: [[32], [64], [128], [256], [512]]`).
  """
  if len(strides) != len(sizes):
    raise ValueError(f"one size per stride: got {len(sizes)} sizes for {len(strides)} strides")
  height, width = image_hw
  return [
    anchors_for_level(
      size,
      stride,
      (math.ceil(height / stride), math.ceil(width / stride)),
      ratios=ratios,
      offset=offset,
    )
    for stride, size in zip(strides, sizes, strict=True)
  ]

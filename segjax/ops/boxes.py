"""Axis-aligned boxes: areas, pairwise IoU, clipping, and the detectron2 box-delta coder.

Boxes are `(x1, y1, x2, y2)` in pixels, float32. Everything here is shape-static, so it runs under
`jax.jit` and `jax.vmap` (functions take one image's boxes; callers vmap over the batch).
"""

import dataclasses
import math

import jax
import jax.numpy as jnp


def box_area(boxes: jax.Array) -> jax.Array:
  """Areas, f32[...], of boxes f32[...,4]; widths and heights are clipped at 0, so a degenerate
  box (x2 < x1 or y2 < y1) has area 0 (torchvision multiplies the signed sides instead)."""
  widths = jnp.maximum(boxes[..., 2] - boxes[..., 0], 0.0)
  heights = jnp.maximum(boxes[..., 3] - boxes[..., 1], 0.0)
  return widths * heights


def box_iou(boxes1: jax.Array, boxes2: jax.Array) -> jax.Array:
  """Pairwise intersection over union, f32[N,M], of boxes1: f32[N,4] and boxes2: f32[M,4].

  As torchvision's `box_iou`, with `box_area`'s degenerate boxes and 0 (not NaN) where the union
  is empty.
  """
  lt = jnp.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
  rb = jnp.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
  wh = jnp.maximum(rb - lt, 0.0)
  inter = wh[..., 0] * wh[..., 1]
  union = box_area(boxes1)[:, None] + box_area(boxes2)[None, :] - inter
  positive = union > 0
  return jnp.where(positive, inter / jnp.where(positive, union, 1.0), 0.0)


def clip_boxes(boxes: jax.Array, height: jax.Array | int, width: jax.Array | int) -> jax.Array:
  """Boxes f32[...,4] with x clamped to [0, width] and y to [0, height] (detectron2 `Boxes.clip`).

  `height` and `width` may be traced scalars (per-image sizes under vmap).
  """
  x1, y1, x2, y2 = (boxes[..., i] for i in range(4))
  x1, x2 = jnp.clip(x1, 0, width), jnp.clip(x2, 0, width)
  y1, y2 = jnp.clip(y1, 0, height), jnp.clip(y2, 0, height)
  return jnp.stack([x1, y1, x2, y2], axis=-1)


@dataclasses.dataclass(frozen=True)
class BoxCoder:
  """detectron2's `Box2BoxTransform`: boxes relative to reference boxes as (dx, dy, dw, dh).

  `dx = wx·(tx - ax)/aw`, `dy = wy·(ty - ay)/ah`, `dw = ww·log(tw/aw)`, `dh = wh·log(th/ah)` with
  centres `x1 + w/2` and widths `x2 - x1` (no legacy "+1"). `decode` clamps dw and dh at
  `scale_clamp` before exponentiating, so a wild regression cannot overflow.

  Attributes:
    weights: (wx, wy, ww, wh); Faster R-CNN uses (1, 1, 1, 1) for the RPN and (10, 10, 5, 5) for
      the box head.
    scale_clamp: largest dw/dh (after dividing by the weights) that `decode` applies.
  """

  weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
  scale_clamp: float = math.log(1000.0 / 16)

  def encode(self, reference_boxes: jax.Array, target_boxes: jax.Array) -> jax.Array:
    """Deltas f32[N,4] that `decode` turns back into `target_boxes`.

    Args:
      reference_boxes: f32[N,4] anchors or proposals; they must have positive width and height.
      target_boxes: f32[N,4] boxes to reach, e.g. matched ground truth. A zero-sized target gives
        -inf; mask unused rows with `jnp.where`, not by multiplying.
    """
    wx, wy, ww, wh = self.weights
    ref_w = reference_boxes[:, 2] - reference_boxes[:, 0]
    ref_h = reference_boxes[:, 3] - reference_boxes[:, 1]
    ref_x = reference_boxes[:, 0] + 0.5 * ref_w
    ref_y = reference_boxes[:, 1] + 0.5 * ref_h
    tgt_w = target_boxes[:, 2] - target_boxes[:, 0]
    tgt_h = target_boxes[:, 3] - target_boxes[:, 1]
    tgt_x = target_boxes[:, 0] + 0.5 * tgt_w
    tgt_y = target_boxes[:, 1] + 0.5 * tgt_h
    dx = wx * (tgt_x - ref_x) / ref_w
    dy = wy * (tgt_y - ref_y) / ref_h
    dw = ww * jnp.log(tgt_w / ref_w)
    dh = wh * jnp.log(tgt_h / ref_h)
    return jnp.stack([dx, dy, dw, dh], axis=-1)

  def decode(self, deltas: jax.Array, boxes: jax.Array) -> jax.Array:
    """Boxes f32[N,K*4] obtained by applying deltas f32[N,K*4] to boxes f32[N,4] (K = 1: f32[N,4]).

    Each group of four delta columns (one per class for a class-specific box head) is applied to
    the same reference box.
    """
    wx, wy, ww, wh = self.weights
    deltas = deltas.astype(jnp.float32)
    boxes = boxes.astype(jnp.float32)
    d = deltas.reshape(*deltas.shape[:-1], -1, 4)
    widths = (boxes[:, 2] - boxes[:, 0])[:, None]
    heights = (boxes[:, 3] - boxes[:, 1])[:, None]
    ctr_x = boxes[:, 0][:, None] + 0.5 * widths
    ctr_y = boxes[:, 1][:, None] + 0.5 * heights
    dx, dy = d[..., 0] / wx, d[..., 1] / wy
    dw = jnp.minimum(d[..., 2] / ww, self.scale_clamp)
    dh = jnp.minimum(d[..., 3] / wh, self.scale_clamp)
    pred_x = dx * widths + ctr_x
    pred_y = dy * heights + ctr_y
    pred_w = jnp.exp(dw) * widths
    pred_h = jnp.exp(dh) * heights
    pred = jnp.stack(
      [pred_x - 0.5 * pred_w, pred_y - 0.5 * pred_h, pred_x + 0.5 * pred_w, pred_y + 0.5 * pred_h],
      axis=-1,
    )
    return pred.reshape(deltas.shape)

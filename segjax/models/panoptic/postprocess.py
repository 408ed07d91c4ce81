"""Panoptic-DeepLab's post-processing (Cheng et al. 2020) under `jit`, every shape static.

As detectron2's `get_panoptic_segmentation`: instance centres are the peaks of the centre heatmap;
each pixel predicted as a thing class joins the centre nearest to where its offset points; an
instance takes the majority class of its pixels; stuff classes covering too few pixels become void.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

# How many pixel-to-centre distances grouping holds at once, per image (all of 1024×2048 pixels ×
# 200 centres would take 1.6 GB).
_GROUP_CHUNK = 1 << 22


def center_heatmap_nms(center, *, threshold, kernel, top_k):
  """The instance centres of `center: f32[B,H,W]`: the pixels above `threshold` that equal the max
  of their `kernel`×`kernel` neighbourhood (stride 1, SAME, padded with -inf), the `top_k`
  highest per image.

  Returns:
    scores: f32[B,K] the centres' heatmap values, descending (ties: row-major order); 0 for padding.
    yx: i32[B,K,2] their (y, x) pixel coordinates; 0 for padding.
    valid: bool[B,K] which entries are centres (a prefix).
  """
  b, h, w = center.shape
  center = center.astype(jnp.float32)
  pooled = lax.reduce_window(center, -jnp.inf, lax.max, (1, kernel, kernel), (1, 1, 1), "SAME")
  peak = (center == pooled) & (center > threshold)
  flat = jnp.where(peak, center, -jnp.inf).reshape(b, h * w)
  if h * w < top_k:
    flat = jnp.pad(flat, ((0, 0), (0, top_k - h * w)), constant_values=-jnp.inf)
  scores, index = lax.top_k(flat, top_k)
  valid = scores > -jnp.inf
  yx = jnp.stack([index // w, index % w], -1)
  return jnp.where(valid, scores, 0.0), jnp.where(valid[..., None], yx, 0), valid


def panoptic_deeplab_postprocess(
  semantic_logits,
  center,
  offset,
  *,
  things,
  label_divisor=1000,
  ignore_index=255,
  center_threshold=0.1,
  nms_kernel=7,
  top_k=200,
  stuff_area=2048,
):
  """The panoptic map `i32[B,H,W]` (class * label_divisor + instance) of Panoptic-DeepLab's heads.

  Args:
    semantic_logits: f32[B,H,W,C] the semantic head's logits; the class is their argmax.
    center: f32[B,H,W] the centre heatmap; its centres are those of `center_heatmap_nms` with
      `center_threshold`, `nms_kernel` and `top_k`.
    offset: f32[B,H,W,2] (dy, dx) from each pixel to its instance's centre.
    things: the thing classes (a tuple, static under `jit`, as are all keyword arguments).
    label_divisor, ignore_index: void is `ignore_index * label_divisor`.
    stuff_area: a stuff class predicted on fewer pixels of the image becomes void there.

  A pixel of a thing class joins the centre nearest (squared distance) to its coordinates plus its
  offset (ties: the higher-scoring centre); with no centre in the image it is void. An instance's
  class is the most frequent class among its pixels (ties: the lower class id). Instances are
  numbered 1, 2, ... within each class by their centres' scores, descending, so the ids of a class
  are consecutive, as in the reference (which orders centres row-major, not by score). Void comes
  only from these two rules: no pixel is predicted void.
  """
  num_classes = semantic_logits.shape[-1]
  semantic = jnp.argmax(semantic_logits, -1).astype(jnp.int32)
  _, yx, valid = center_heatmap_nms(
    center, threshold=center_threshold, kernel=nms_kernel, top_k=top_k
  )
  merge = functools.partial(
    _merge,
    is_thing_class=jnp.asarray(np.isin(np.arange(num_classes), things)),
    label_divisor=label_divisor,
    void=ignore_index * label_divisor,
    stuff_area=stuff_area,
  )
  return jax.vmap(merge)(semantic, offset.astype(jnp.float32), yx.astype(jnp.float32), valid)


def _merge(semantic, offset, centers, valid, *, is_thing_class, label_divisor, void, stuff_area):
  """One image's panoptic map from `semantic: i32[H,W]`, `offset: f32[H,W,2]` and the centres
  `centers: f32[K,2]` where `valid: bool[K]`."""
  k = valid.shape[0]
  num_classes = is_thing_class.shape[0]
  thing = is_thing_class[semantic]
  # 0: no instance (void on thing pixels).
  instance = jnp.where(thing & jnp.any(valid), _nearest_center(offset, centers, valid) + 1, 0)
  votes = jnp.zeros((k + 1, num_classes), jnp.int32).at[instance, semantic].add(1)[1:]
  instance_class = jnp.argmax(votes, -1).astype(jnp.int32)
  present = jnp.any(votes > 0, -1)
  earlier = jnp.arange(k)[None, :] < jnp.arange(k)[:, None]
  same_class = instance_class[:, None] == instance_class[None, :]
  number = jnp.sum(earlier & same_class & present[None, :], -1) + 1
  thing_ids = jnp.concatenate([jnp.array([void]), instance_class * label_divisor + number])
  stuff_ids = jnp.where(
    jnp.bincount(semantic.reshape(-1), length=num_classes) >= stuff_area,
    jnp.arange(num_classes) * label_divisor,
    void,
  )
  return jnp.where(thing, thing_ids[instance], stuff_ids[semantic]).astype(jnp.int32)


def _nearest_center(offset, centers, valid):
  """i32[H,W]: per pixel, the index of the valid centre nearest to the pixel plus its offset, in
  blocks of rows that hold about `_GROUP_CHUNK` distances."""
  h, w, _ = offset.shape
  k = centers.shape[0]

  def nearest(row):
    y, row_offset = row
    points = row_offset + jnp.stack([jnp.full((w,), y), jnp.arange(w, dtype=jnp.float32)], -1)
    distance = jnp.sum((points[:, None, :] - centers[None, :, :]) ** 2, -1)
    return jnp.argmin(jnp.where(valid, distance, jnp.inf), -1).astype(jnp.int32)

  rows = min(max(_GROUP_CHUNK // (w * k), 1), h)
  return lax.map(nearest, (jnp.arange(h, dtype=jnp.float32), offset), batch_size=rows)

"""Panoptic-DeepLab's training targets (Cheng et al. 2020), made on the host, one example at a time.

As detectron2's `PanopticDeepLabTargetGenerator` with `ignore_stuff_in_offset=True`, from a map of
ids `class * label_divisor + instance`: void is class `ignore_index`, and a thing-class segment with
instance 0 is a crowd region, which gets no centre and is ignored by the centre and offset losses.
"""

import numpy as np


def panoptic_deeplab_targets(
  panoptic,
  *,
  things,
  ignore_index=255,
  label_divisor=1000,
  sigma=8.0,
  small_instance_area=4096,
  small_instance_weight=3.0,
  ignore_crowd_in_semantic=False,
):
  """The targets and loss weights of `panoptic: int[H,W]`.

  An instance is a segment of a class in `things` with a nonzero instance id. Its centre is its
  centre of mass; the heatmap peaks at that centre rounded half to even (the reference's `round`),
  the offsets point at it unrounded.

  Returns a dict of
    semantic: u8[H,W] the class; `ignore_index` on void (and on crowd regions when
      `ignore_crowd_in_semantic`).
    center: f32[H,W] the element-wise max over instances of exp(-((y-cy)² + (x-cx)²) / (2σ²)),
      each cut to the pixels within 3σ+1 of its centre along y and x (the reference's
      (6σ+3)-wide window for an integer σ).
    offset: f32[H,W,2] (dy, dx), channels in (y, x) order: the centre minus the pixel's coordinates
      on instance pixels, 0 elsewhere.
    semantic_weights: f32[H,W] `small_instance_weight` on instances of fewer than
      `small_instance_area` pixels, 0 where `semantic` is `ignore_index`, 1 elsewhere.
    center_weights: f32[H,W] 0 on void and crowd regions, 1 elsewhere.
    offset_weights: f32[H,W] 1 on instance pixels, 0 elsewhere.
  """
  panoptic = np.asarray(panoptic)
  h, w = panoptic.shape
  # Per segment, then looked up per pixel: one pass over the image, whatever the instance count.
  ids, inverse, areas = np.unique(panoptic, return_inverse=True, return_counts=True)
  inverse = inverse.reshape(-1)
  classes = ids // label_divisor
  void = classes == ignore_index
  thing = np.isin(classes, things) & ~void
  crowd = thing & (ids % label_divisor == 0)
  instance = thing & ~crowd
  ignored = void | (crowd & ignore_crowd_in_semantic)
  center_y = np.bincount(inverse, np.repeat(np.arange(h), w), len(ids)) / areas
  center_x = np.bincount(inverse, np.tile(np.arange(w), h), len(ids)) / areas

  def per_pixel(values):
    return values[inverse].reshape(h, w)

  small = instance & (areas < small_instance_area)
  semantic_weights = np.where(ignored, 0.0, np.where(small, small_instance_weight, 1.0))
  peaks = np.rint(np.stack([center_y[instance], center_x[instance]], -1)).astype(int)
  on_instance = per_pixel(instance)
  offset = np.stack(
    [
      np.where(on_instance, per_pixel(center_y) - np.arange(h)[:, None], 0.0),
      np.where(on_instance, per_pixel(center_x) - np.arange(w)[None, :], 0.0),
    ],
    -1,
  )
  return {
    "semantic": per_pixel(np.where(ignored, ignore_index, classes).astype(np.uint8)),
    "center": _center_heatmap((h, w), peaks, sigma),
    "offset": offset.astype(np.float32),
    "semantic_weights": per_pixel(semantic_weights.astype(np.float32)),
    "center_weights": per_pixel(np.where(void | crowd, 0.0, 1.0).astype(np.float32)),
    "offset_weights": on_instance.astype(np.float32),
  }


def _center_heatmap(shape, peaks, sigma):
  """The max over `peaks: int[N,2]` (y, x) of a Gaussian cut to a window around each."""
  h, w = shape
  radius = int(3 * sigma + 1)
  d = np.arange(-radius, radius + 1)
  gaussian = np.exp(-(d[:, None] ** 2 + d[None, :] ** 2) / (2 * sigma**2)).astype(np.float32)
  heatmap = np.zeros(shape, np.float32)
  for y, x in peaks:
    y0, y1 = max(y - radius, 0), min(y + radius + 1, h)
    x0, x1 = max(x - radius, 0), min(x + radius + 1, w)
    window = heatmap[y0:y1, x0:x1]
    np.maximum(
      window,
      gaussian[y0 - y + radius : y1 - y + radius, x0 - x + radius : x1 - x + radius],
      out=window,
    )
  return heatmap

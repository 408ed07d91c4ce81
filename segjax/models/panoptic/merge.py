"""Panoptic FPN's merge of detections and a semantic map into one panoptic map (jit- and
vmap-friendly).

It is detectron2's `combine_semantic_and_instance_outputs` (Kirillov et al. 2019): detections
are painted by score, descending, each onto the pixels still free unless more than
`overlap_threshold` of its mask is taken already; then each stuff class of the semantic map
claims its free pixels if they number at least `stuff_area`. Ids are
`class * label_divisor + instance`: things count 1, 2, ... in paint order, stuff has instance 0,
and pixels left over are void, `ignore_index * label_divisor`. Ties in score are broken by index,
lower first (detectron2's `argsort` leaves them unspecified).
"""

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


def merge_panoptic(
  masks: jax.Array,
  scores: jax.Array,
  labels: jax.Array,
  valid: jax.Array,
  semantic: jax.Array,
  *,
  things: Sequence[int],
  stuff: Sequence[int],
  label_divisor: int = 1000,
  ignore_index: int = 255,
  score_threshold: float = 0.5,
  overlap_threshold: float = 0.5,
  stuff_area: int = 4096,
) -> jax.Array:
  """The panoptic map of a batch of detections and semantic predictions.

  Args:
    masks: bool[B,D,H,W] detection masks, pasted into the image and thresholded.
    scores: f32[B,D] detection scores, in any order.
    labels: i32[B,D] detection classes, as indices into `things`.
    valid: bool[B,D] which detections are real.
    semantic: i32[B,H,W] the semantic prediction (argmax), in dataset class ids.
    things: the dataset's thing classes (static).
    stuff: the dataset's stuff classes (static); other classes of `semantic` make no segments.
    label_divisor, ignore_index: the id format; void is `ignore_index * label_divisor`.
    score_threshold: detections scoring less are skipped (a Python float, compared with the
      float32 scores as detectron2 compares them, in float64). NaN scores are skipped too.
    overlap_threshold: a detection is skipped when the fraction of its mask already painted is
      strictly greater. Compared in float32 (detectron2: float64), which can differ only for a
      fraction within float32 rounding of the threshold, so for masks of millions of pixels.
    stuff_area: the fewest free pixels a stuff class needs to make a segment.

  Returns:
    panoptic: i32[B,H,W] `class * label_divisor + instance`, as above.
  """
  merge = functools.partial(
    _merge_image,
    things=jnp.asarray(things, jnp.int32),
    stuff=tuple(stuff),
    label_divisor=label_divisor,
    void=ignore_index * label_divisor,
    score_threshold=_float32_at_least(score_threshold),
    overlap_threshold=overlap_threshold,
    stuff_area=stuff_area,
  )
  return jax.vmap(merge)(masks, scores, labels, valid, semantic)


def _float32_at_least(x: float) -> np.float32:
  """The least float32 ≥ `x`: for a float32 `s`, `s >= it` iff `float(s) >= x`."""
  y = np.float32(x)
  return np.nextafter(y, np.float32(np.inf)) if float(y) < x else y


def _merge_image(
  masks,
  scores,
  labels,
  valid,
  semantic,
  *,
  things,
  stuff,
  label_divisor,
  void,
  score_threshold,
  overlap_threshold,
  stuff_area,
):
  """`merge_panoptic` of one image: `masks: bool[D,H,W]`, ... → `i32[H,W]`."""
  candidate = valid & (scores >= score_threshold)
  order = jnp.argsort(-jnp.where(candidate, scores, -jnp.inf), stable=True)
  classes = things[labels] * label_divisor

  def paint(carry, d):
    panoptic, count = carry  # -1 where still free
    mask = masks[d]
    free = panoptic < 0
    area = jnp.sum(mask)
    overlap = jnp.sum(mask & ~free)
    keep = candidate[d] & (area > 0) & (overlap / jnp.maximum(area, 1) <= overlap_threshold)
    count += keep
    panoptic = jnp.where(keep & mask & free, classes[d] + count, panoptic)
    return (panoptic, count), None

  start = jnp.full(semantic.shape, -1, jnp.int32)
  (panoptic, _), _ = lax.scan(paint, (start, jnp.int32(0)), order)
  free = panoptic < 0
  if stuff:
    # Free pixels per class id, then a lookup of which ids make a stuff segment.
    size = max(stuff) + 1
    area = jax.ops.segment_sum(free.ravel().astype(jnp.int32), semantic.ravel(), size)
    is_stuff = np.zeros(size, bool)
    is_stuff[list(stuff)] = True
    kept = jnp.take(is_stuff & (area >= stuff_area), semantic, mode="fill", fill_value=False)
    panoptic = jnp.where(free & kept, semantic * label_divisor, panoptic)
    free &= ~kept
  return jnp.where(free, void, panoptic)

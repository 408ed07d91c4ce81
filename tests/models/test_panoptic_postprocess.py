"""Panoptic-DeepLab post-processing: perfect heads give back the ground truth; hand cases of centre
NMS, majority vote and the stuff-area filter; a NumPy transcription of the reference on random
heads; jit and batching."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from segjax.models.panoptic import postprocess as postprocess_module
from segjax.models.panoptic.postprocess import center_heatmap_nms, panoptic_deeplab_postprocess
from segjax.models.panoptic.targets import panoptic_deeplab_targets

VOID = 255_000
KWARGS = (
  "things",
  "label_divisor",
  "ignore_index",
  "center_threshold",
  "nms_kernel",
  "top_k",
  "stuff_area",
)
postprocess = jax.jit(panoptic_deeplab_postprocess, static_argnames=KWARGS)


def assert_equal_up_to_instance_ids(predicted, truth):
  """Equal up to a bijection of ids that keeps each id's class and whether it is stuff (0)."""
  predicted, truth = np.asarray(predicted).ravel(), np.asarray(truth).ravel()
  np.testing.assert_array_equal(predicted // 1000, truth // 1000)
  np.testing.assert_array_equal(predicted % 1000 == 0, truth % 1000 == 0)
  pairs = np.unique(np.stack([truth, predicted], -1), axis=0)
  assert len(np.unique(pairs[:, 0])) == len(pairs), "a true segment is split"
  assert len(np.unique(pairs[:, 1])) == len(pairs), "predicted segment covers several true ones"


def _perfect_heads(panoptic, things, num_classes):
  targets = panoptic_deeplab_targets(panoptic, things=things)
  logits = 10.0 * jax.nn.one_hot(targets["semantic"], num_classes)
  return logits[None], jnp.asarray(targets["center"])[None], jnp.asarray(targets["offset"])[None]


def _hand_map():
  """Stuff 0 above and 3 below, stuff 4 in a box; things 1 and 2, some touching."""
  panoptic = np.full((48, 64), 0, np.int32)
  panoptic[30:] = 3000
  panoptic[2:10, 50:60] = 4000
  panoptic[4:14, 4:14] = 1001
  panoptic[4:14, 14:24] = 1002  # touches 1001
  panoptic[14:22, 4:24] = 2001  # touches both
  panoptic[25:40, 30:36] = 2002  # across the stuff border
  panoptic[20:28, 40:62] = 1007
  # An L whose centre of mass (y 41.2, x 12.6) lies on its concave side.
  panoptic[34:46, 6:10] = 1003
  panoptic[42:46, 10:24] = 1003
  return panoptic


def _random_map(seed):
  """Instances in the cells of a 4×5 grid of 12×12 cells: whole cells (so neighbours touch) or
  boxes of at least 5×5 inside them, over stuff 0 and 3, with some stuff 4 boxes."""
  rng = np.random.default_rng(seed)
  panoptic = np.where(np.arange(48)[:, None] < 20, 0, 3000) + np.zeros((1, 60), np.int32)
  for instance, (row, col) in enumerate(np.ndindex(4, 5), start=1):
    y, x = 12 * row, 12 * col
    kind = rng.integers(4)
    if kind == 0:
      continue
    if kind == 1:
      panoptic[y : y + 12, x : x + 12] = rng.choice((1, 2)) * 1000 + instance
      continue
    dy, dx = rng.integers(5, 13, 2)
    y, x = y + rng.integers(0, 13 - dy), x + rng.integers(0, 13 - dx)
    segment = rng.choice((1, 2)) * 1000 + instance if kind == 2 else 4000
    panoptic[y : y + dy, x : x + dx] = segment
  return panoptic


@pytest.mark.parametrize("panoptic", [_hand_map(), *(_random_map(seed) for seed in range(4))])
def test_perfect_heads_give_back_the_ground_truth(panoptic):
  heads = _perfect_heads(panoptic, (1, 2), num_classes=5)
  predicted = postprocess(*heads, things=(1, 2), stuff_area=0)
  assert predicted.shape == (1, *panoptic.shape) and predicted.dtype == jnp.int32
  assert_equal_up_to_instance_ids(predicted[0], panoptic)


def test_centre_nms_keeps_the_higher_of_two_close_peaks():
  center = np.zeros((1, 16, 16), np.float32)
  center[0, 5, 5] = 0.9
  center[0, 5, 8] = 0.8  # 3 pixels away: inside the 7×7 window
  center[0, 12, 5] = 0.7
  center[0, 12, 9] = 0.6  # 4 pixels away: outside
  center[0, 0, 15] = 0.3  # at the border
  center[0, 15, 15] = 0.05  # under the threshold
  scores, yx, valid = center_heatmap_nms(center, threshold=0.1, kernel=7, top_k=6)
  np.testing.assert_allclose(scores, [[0.9, 0.7, 0.6, 0.3, 0, 0]])
  np.testing.assert_array_equal(yx, [[[5, 5], [12, 5], [12, 9], [0, 15], [0, 0], [0, 0]]])
  np.testing.assert_array_equal(valid, [[True] * 4 + [False] * 2])
  scores, yx, valid = center_heatmap_nms(center, threshold=0.1, kernel=7, top_k=2)
  np.testing.assert_allclose(scores, [[0.9, 0.7]])
  assert valid.all()


def test_centre_nms_on_fewer_pixels_than_top_k():
  center = jnp.array([[[0.0, 0.5], [0.2, 0.0]]])
  scores, yx, valid = center_heatmap_nms(center, threshold=0.1, kernel=3, top_k=5)
  np.testing.assert_allclose(scores, [[0.5, 0, 0, 0, 0]])
  np.testing.assert_array_equal(yx[0, 0], [0, 1])
  np.testing.assert_array_equal(valid, [[True, False, False, False, False]])


def test_instance_class_is_the_majority_and_ids_count_per_class():
  semantic = np.zeros((12, 12), np.int32)
  semantic[2:5, 2:7] = 1  # 15 pixels of class 1 ...
  semantic[5:7, 2:7] = 2  # ... and 10 of class 2, all near the first centre
  semantic[8:11, 8:11] = 1
  semantic[8:11, 0:3] = 2
  center = np.zeros((12, 12), np.float32)
  center[4, 4], center[9, 9], center[9, 1] = 0.5, 0.9, 0.7
  logits = jax.nn.one_hot(semantic, 3)[None]
  predicted = postprocess(
    logits, center[None], jnp.zeros((1, 12, 12, 2)), things=(1, 2), stuff_area=0
  )[0]
  expected = np.zeros((12, 12), np.int32)
  expected[2:7, 2:7] = 1002  # class 1's second centre by score
  expected[8:11, 8:11] = 1001
  expected[8:11, 0:3] = 2001
  np.testing.assert_array_equal(predicted, expected)


def test_thing_pixels_without_a_centre_are_void():
  semantic = np.zeros((6, 6), np.int32)
  semantic[1:4, 1:4] = 1
  predicted = postprocess(
    jax.nn.one_hot(semantic, 3)[None],
    jnp.zeros((1, 6, 6)),
    jnp.zeros((1, 6, 6, 2)),
    things=(1,),
    stuff_area=0,
  )
  np.testing.assert_array_equal(predicted[0], np.where(semantic == 1, VOID, 0 * 1000))


@pytest.mark.parametrize("stuff_area, kept", [(24, True), (25, False)])
def test_stuff_under_the_area_becomes_void(stuff_area, kept):
  semantic = np.zeros((8, 8), np.int32)
  semantic[:3] = 3  # 24 pixels
  semantic[5:7, 5:7] = 1  # a thing instance: not filtered
  center = np.zeros((1, 8, 8), np.float32)
  center[0, 5, 5] = 1.0
  predicted = postprocess(
    jax.nn.one_hot(semantic, 4)[None],
    center,
    jnp.zeros((1, 8, 8, 2)),
    things=(1,),
    stuff_area=stuff_area,
  )[0]
  expected = np.select([semantic == 3, semantic == 1], [3000 if kept else VOID, 1001], 0)
  np.testing.assert_array_equal(predicted, expected)


def _reference(semantic, center, offset, *, things, top_k, stuff_area, threshold=0.1, kernel=7):
  """detectron2's get_panoptic_segmentation for one image, in NumPy, with void 255000, except that
  it keeps the `top_k` highest centres (the reference keeps those above the k-th: k - 1)."""
  h, w = semantic.shape
  pad = kernel // 2
  windows = np.lib.stride_tricks.sliding_window_view(
    np.pad(center, pad, constant_values=-np.inf), (kernel, kernel)
  )
  peak = (center == windows.max((-1, -2))) & (center > threshold)
  order = np.argsort(-np.where(peak, center, -np.inf), axis=None, kind="stable")
  centers = np.stack(np.unravel_index(order[: min(top_k, peak.sum())], (h, w)), -1)
  thing = np.isin(semantic, things)
  instance = np.zeros((h, w), int)
  if len(centers):
    points = np.stack(np.mgrid[:h, :w], -1) + offset
    distance = ((points[:, :, None] - centers) ** 2).sum(-1)
    instance = np.where(thing, distance.argmin(-1) + 1, 0)
  panoptic = np.full((h, w), VOID)
  count = {}
  for i in np.unique(instance[instance > 0]):
    mask = instance == i
    c = np.bincount(semantic[mask]).argmax()
    count[c] = count.get(c, 0) + 1
    panoptic[mask] = c * 1000 + count[c]
  for c in np.unique(semantic):
    mask = semantic == c
    if c not in things and mask.sum() >= stuff_area:
      panoptic[mask] = c * 1000
  return panoptic


def _random_heads(seed, batch=1, h=30, w=40, num_classes=5):
  rng = np.random.default_rng(seed)
  logits = rng.normal(size=(batch, h, w, num_classes)).astype(np.float32)
  logits[..., 2] -= 1.0  # a rarer stuff class, for the area filter
  center = rng.random((batch, h, w), np.float32)
  offset = 5 * rng.normal(size=(batch, h, w, 2)).astype(np.float32)
  return logits, center, offset


@pytest.mark.parametrize("seed, top_k", [(0, 8), (1, 8), (2, 100)])
def test_matches_the_reference_on_random_heads(seed, top_k, monkeypatch):
  # Rows grouped 4 at a time: 7 blocks and a remainder of 2. A fresh function, so a fresh trace.
  monkeypatch.setattr(postprocess_module, "_GROUP_CHUNK", 4 * 40 * top_k)
  kwargs = {"things": (1, 3), "top_k": top_k, "stuff_area": 150}
  logits, center, offset = _random_heads(seed)
  predicted = jax.jit(functools.partial(panoptic_deeplab_postprocess, **kwargs))(
    logits, center, offset
  )
  expected = _reference(logits[0].argmax(-1), center[0], offset[0], **kwargs)
  assert (expected == VOID).any() and (expected % 1000 > 0).any()
  assert_equal_up_to_instance_ids(predicted[0], expected)


def test_batch_matches_single_images():
  logits, center, offset = _random_heads(3, batch=3)
  kwargs = {"things": (1, 3), "top_k": 16, "stuff_area": 150, "nms_kernel": 5}
  batched = postprocess(logits, center, offset, **kwargs)
  for i in range(3):
    single = postprocess(logits[i : i + 1], center[i : i + 1], offset[i : i + 1], **kwargs)
    np.testing.assert_array_equal(batched[i], single[0])

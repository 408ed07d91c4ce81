"""InteractiveSam: output shapes, variable paths, the prompt samplers on hand masks, and one
training and one evaluation pass of a tiny model (prompts where SAM's recipe puts them, the click
protocol's IoUs)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_sam

from segjax.metrics.interactive import mask_iou
from segjax.models.sam import Sam, SamConfig
from segjax.models.sam.interactive import (
  InteractiveSam,
  error_clicks,
  from_sam,
  jitter_boxes,
  mask_boxes,
  sample_in,
)

TINY = tiny_sam.TINY
numpy_variables = tiny_sam.numpy_variables
L = 32  # low-res side: 4 * 64 / 8
SIDE = 56  # images smaller than the model's 64: the model pads them
KEYS = jax.random.split(jax.random.key(0), 400)


def hand_targets():
  """Two 56x56 images, three objects each; the last of the first image is padding (empty)."""
  masks = np.zeros((2, 3, SIDE, SIDE), bool)
  masks[0, 0, 8:24, 8:30] = True
  yy, xx = np.mgrid[:SIDE, :SIDE]
  masks[0, 1] = (yy - 40) ** 2 + (xx - 38) ** 2 <= 100
  masks[1, 0, 30:50, 5:20] = True
  masks[1, 1, 2:6, 2:6] = True
  masks[1, 2, 10:40, 30:36] = masks[1, 2, 34:40, 30:52] = True
  valid = masks.any(axis=(2, 3))
  ignore = np.zeros((2, SIDE, SIDE), bool)
  return {"masks": jnp.asarray(masks), "valid": jnp.asarray(valid), "ignore": jnp.asarray(ignore)}


def _shapes(tree):
  return jax.tree.map(lambda x: tuple(x.shape), tree)


@pytest.mark.parametrize("mode", ["train", "eval", "grid"])
def test_output_shapes(mode):
  model = InteractiveSam(**TINY, clicks=2, eval_clicks=6, grid_points=3)
  images = jax.ShapeDtypeStruct((2, SIDE, SIDE, 3), jnp.float32)
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), images)
  targets = None if mode == "grid" else hand_targets()
  apply = functools.partial(model.apply, train=mode == "train", targets=targets)
  outputs = _shapes(
    jax.eval_shape(lambda v, x: apply(v, x, rngs={"sample": KEYS[0]}), variables, images)
  )
  if mode == "train":
    assert outputs["logits"] == [(2, 3, 3, L, L), (2, 3, 1, L, L), (2, 3, 1, L, L)]
    assert outputs["iou_predictions"] == [(2, 3, 3), (2, 3, 1), (2, 3, 1)]
    assert outputs["targets"] == (2, 3, L, L) and outputs["ignore"] == (2, L, L)
    assert outputs["points"] == (2, 3, 3, 2) and outputs["labels"] == (2, 3, 3)
    assert outputs["boxes"] == (2, 3, 4) and outputs["box_first"] == outputs["valid"] == (2, 3)
  elif mode == "eval":
    objects = {"masks": (2, 3, SIDE, SIDE), "boxes": (2, 3, 4), "scores": (2, 3), "valid": (2, 3)}
    assert outputs == {**objects, "ious": (2, 3, 6)}
  else:
    objects = {"masks": (2, 9, SIDE, SIDE), "boxes": (2, 9, 4), "scores": (2, 9), "valid": (2, 9)}
    assert outputs == objects


def test_training_needs_targets():
  model = InteractiveSam(**TINY)
  images = jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32)
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), images)
  with pytest.raises(ValueError, match="needs `targets`"):
    jax.eval_shape(lambda v, x: model.apply(v, x, train=True), variables, images)


@pytest.mark.parametrize("size", ["", "vit_b"])
def test_variables_are_sams_under_sam(size):
  model = InteractiveSam(size=size, **({} if size else TINY))
  config = getattr(SamConfig, size)() if size else SamConfig(**TINY)
  images = jax.ShapeDtypeStruct((1, config.image_size, config.image_size, 3), jnp.float32)
  ours = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), images)
  official = jax.eval_shape(Sam(config).init, jax.random.key(0), images)
  # Official weights converted by segjax.convert.sam load as they are, under params/sam/...
  assert _shapes(ours) == _shapes(from_sam(official))
  pe = ours["batch_stats"]["sam"]["prompt_encoder"]["pe_layer"]
  assert pe["positional_encoding_gaussian_matrix"].shape == (2, config.prompt_dim // 2)


def test_sample_in_draws_uniformly_inside_each_mask():
  masks = np.zeros((3, 6, 7), bool)
  masks[0, 1:3, 2:5] = True  # 6 pixels
  masks[1, 5, 6] = True
  yx, found = jax.vmap(sample_in, in_axes=(0, None))(KEYS[:300], jnp.asarray(masks))
  yx, found = np.asarray(yx), np.asarray(found)
  assert found[:, :2].all() and not found[:, 2].any()
  assert masks[0][yx[:, 0, 0], yx[:, 0, 1]].all()
  assert (yx[:, 1] == [5, 6]).all()
  counts = np.zeros((6, 7), int)
  np.add.at(counts, (yx[:, 0, 0], yx[:, 0, 1]), 1)
  assert counts[masks[0]].min() > 25  # 50 expected per pixel


def test_mask_boxes_are_first_and_last_pixels():
  masks = np.zeros((2, 8, 9), bool)
  masks[0, 2:5, 3] = masks[0, 4, 1:7] = True
  boxes = np.asarray(mask_boxes(jnp.asarray(masks)))
  np.testing.assert_array_equal(boxes, [[1, 2, 6, 4], [0, 0, 0, 0]])


@pytest.mark.parametrize(
  "box, std",
  [((10.0, 20.0, 50.0, 30.0), (4.0, 1.0, 4.0, 1.0)), ((50.0, 60.0, 450.0, 460.0), (20.0,) * 4)],
)
def test_box_noise_is_a_tenth_of_the_side_up_to_20_pixels(box, std):
  boxes = jnp.broadcast_to(jnp.asarray(box), (1, 4))
  jittered = np.asarray(jax.vmap(jitter_boxes, in_axes=(0, None, None))(KEYS, boxes, (512, 512)))
  noise = jittered[:, 0] - np.asarray(box)
  assert (np.abs(noise) <= 2 * np.asarray(std) + 1e-4).all()
  # A normal cut at ±2 std has 0.88 of its std.
  np.testing.assert_allclose(noise.std(axis=0), 0.88 * np.asarray(std), rtol=0.15)
  assert (jittered[:, 0, 0] <= jittered[:, 0, 2]).all()


def test_box_noise_stays_in_the_image():
  boxes = jnp.asarray([[0.0, 0.0, 99.0, 49.0]])
  jittered = jax.vmap(jitter_boxes, in_axes=(0, None, None))(KEYS, boxes, (50, 100))
  assert jittered.min() == 0 and jittered[..., 2].max() <= 99 and jittered[..., 3].max() <= 49


def test_error_clicks_land_in_the_error_region_with_its_sign():
  gt, pred = np.zeros((5, 8, 8), bool), np.zeros((5, 8, 8), bool)
  gt[0, 2:6, 2:6], pred[0, 2:6, 2:4] = True, True  # false negatives only
  gt[1, 2:4, 2:4], pred[1, 2:6, 2:6] = True, True  # false positives only
  gt[2, 0:4, :], pred[2, 2:8, :] = True, True  # both
  gt[3, 1:3, 1:3] = pred[3, 1:3, 1:3] = True  # right: a positive click inside
  ignore = np.zeros_like(gt)
  ignore[2, 6:8] = True  # some false positives of object 2 are void: never clicked
  draws = jax.vmap(error_clicks, in_axes=(0, None, None, None))
  yx, labels = draws(KEYS[:200], jnp.asarray(pred), jnp.asarray(gt), jnp.asarray(ignore))
  yx, labels = np.asarray(yx), np.asarray(labels)
  n = np.arange(5)
  inside = gt[n, yx[..., 0], yx[..., 1]]
  error = (gt != pred)[n, yx[..., 0], yx[..., 1]]
  assert error[:, :3].all() and not ignore[n, yx[..., 0], yx[..., 1]].any()
  assert (labels[:, :3] == inside[:, :3]).all()
  assert (labels[:, 0] == 1).all() and (labels[:, 1] == 0).all()
  assert 0 < labels[:, 2].mean() < 1  # both signs drawn
  assert inside[:, 3].all() and (labels[:, 3] == 1).all()
  assert (labels[:, 4] == -1).all()  # nothing to click at all


@functools.cache
def training_pass():
  """One training pass of a tiny model: the model, its variables, images and the outputs."""
  model = InteractiveSam(**TINY, clicks=1, eval_clicks=3)
  images = jnp.asarray(np.random.default_rng(1).normal(size=(2, SIDE, SIDE, 3)), jnp.float32)
  variables = numpy_variables(model, images)
  apply = jax.jit(functools.partial(model.apply, train=True))
  outputs = apply(variables, images, targets=hand_targets(), rngs={"sample": KEYS[1]})
  return model, variables, images, jax.device_get(outputs)


def test_training_prompts_follow_sams_recipe():
  outputs = training_pass()[3]
  masks, valid = (np.asarray(x) for x in (hand_targets()["masks"], hand_targets()["valid"]))
  box_first, points, labels = outputs["box_first"], outputs["points"], outputs["labels"]
  assert box_first.sum() == 3  # half of the 6 objects
  # First prompt: a point inside the mask ...
  for b, g in zip(*np.nonzero(valid & ~box_first), strict=True):
    x, y = points[b, g, 0]
    assert labels[b, g, 0] == 1 and masks[b, g, int(y), int(x)]
  # ... or the mask's box, moved by at most 2 std of a tenth of its side.
  for b, g in zip(*np.nonzero(valid & box_first), strict=True):
    rows, cols = np.nonzero(masks[b, g].any(1))[0], np.nonzero(masks[b, g].any(0))[0]
    tight = np.asarray([cols[0], rows[0], cols[-1], rows[-1]], np.float32)
    side = np.asarray([cols[-1] - cols[0], rows[-1] - rows[0]] * 2, np.float32)
    assert (np.abs(outputs["boxes"][b, g] - tight) <= 0.2 * side + 1e-4).all()
  # Second click: the centre of a low-res cell in the error of the mask of highest predicted
  # IoU, positive iff in a false negative.
  first, iou = outputs["logits"][0], outputs["iou_predictions"][0]
  shown = np.take_along_axis(first, iou.argmax(-1)[..., None, None, None], axis=2)[:, :, 0] > 0
  cells = np.round((points[:, :, 1] + 0.5) / 2 - 0.5).astype(int)  # 2 input pixels per cell
  np.testing.assert_allclose((cells + 0.5) * 2 - 0.5, points[:, :, 1])
  targets = outputs["targets"]
  for b, g in zip(*np.nonzero(valid), strict=True):
    x, y = cells[b, g]
    assert shown[b, g, y, x] != targets[b, g, y, x] or (shown[b, g] == targets[b, g]).all()
    assert labels[b, g, 1] == targets[b, g, y, x]
  np.testing.assert_array_equal(targets[0, 0, 4:12, 4:15], True)  # pooled 2x2, half covered


def test_evaluation_clicks_and_ious():
  model, variables, images = training_pass()[:3]
  targets = hand_targets()
  targets["valid"] = targets["valid"].at[1, 2].set(False)  # a real object left out
  outputs = jax.jit(functools.partial(model.apply, train=False))(variables, images, targets=targets)
  outputs = jax.device_get(outputs)
  masks = np.asarray(targets["masks"])
  np.testing.assert_array_equal(outputs["valid"], targets["valid"])
  ious = outputs["ious"]
  assert ious.shape == (2, 3, 3) and ((ious >= 0) & (ious <= 1)).all()
  for b in range(2):
    for g in range(3):
      assert ious[b, g, -1] == pytest.approx(mask_iou(outputs["masks"][b, g], masks[b, g]))
  # The padding object (empty) has nothing to click: its prediction stays empty, IoU 1.
  assert not outputs["masks"][0, 2].any() and (ious[0, 2] == 1).all()
  for box, mask in zip(
    outputs["boxes"].reshape(-1, 4), outputs["masks"].reshape(6, SIDE, SIDE), strict=True
  ):
    rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    edges = [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1] if mask.any() else [0, 0, 0, 0]
    np.testing.assert_array_equal(box, edges)

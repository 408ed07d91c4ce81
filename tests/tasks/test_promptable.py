"""The promptable task: objects from panoptic maps on device, SAM's losses against numpy, a tiny
model learning, and the interactive scores, predictions and overlays."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import tiny_sam

from segjax.config import base_config
from segjax.data import Dataset
from segjax.models.sam import preprocess
from segjax.models.sam.interactive import InteractiveSam
from segjax.tasks.instance import instances_from_panoptic
from segjax.tasks.promptable import (
  PromptableTask,
  dice_loss,
  mask_losses,
  sigmoid_focal_loss,
  thing_instances,
)


def _task(max_instances=2):
  config = base_config()
  config.task, config.data.max_instances = "promptable", max_instances
  dataset = Dataset(None, class_names=("sky", "car", "person"), things=(1, 2), stuff=(0,))
  return PromptableTask(config, dataset)


def _panoptic():
  panoptic = np.zeros((2, 6, 8), np.int32)  # sky (stuff); the second image has nothing else
  panoptic[0, 1:3, 2:5] = 1001  # car 1: 6 px
  panoptic[0, 4:6, 3:6] = 1002  # car 2: 6 px, after car 1 (equal areas: increasing id)
  panoptic[0, 4, 6] = 2001  # person 1: 1 px
  panoptic[0, 0:6, 0:2] = 2002  # person 2: the largest
  panoptic[0, 0, 7] = 1000  # a crowd of cars (instance 0): no object
  panoptic[0, 5, 7] = 255 * 1000  # void
  return panoptic


@pytest.mark.parametrize("max_instances", [2, 6])
def test_thing_instances_are_instances_from_panoptic(max_instances):
  panoptic = _panoptic()
  masks, valid = jax.jit(thing_instances, static_argnums=(1, 2))(panoptic, (1, 2), max_instances)
  for i in range(2):
    expected = instances_from_panoptic(panoptic[i], (1, 2), max_instances)
    np.testing.assert_array_equal(masks[i], expected["gt_masks"])
    np.testing.assert_array_equal(valid[i], expected["gt_valid"])


def test_targets_and_inputs():
  task = _task(max_instances=3)
  panoptic = _panoptic()
  image = np.random.default_rng(0).integers(0, 256, (2, 6, 8, 3), np.uint8)
  batch = {"image": image, "panoptic": panoptic, "valid": np.array([False, True])}
  targets = task.model_kwargs(batch, train=False)["targets"]
  assert not targets["valid"].any()  # the first example is padding
  np.testing.assert_array_equal(targets["masks"][0, 0], panoptic[0] == 2002)
  np.testing.assert_array_equal(targets["ignore"], panoptic == 255 * 1000)
  np.testing.assert_allclose(task.inputs(batch), preprocess(image, 8)[:, :6], rtol=1e-6)


def _sigmoid(x):
  return 1 / (1 + np.exp(-x))


def _numpy_focal(x, t, w):
  p = _sigmoid(x)
  ce = -(t * np.log(p) + (1 - t) * np.log(1 - p))
  p_t = np.where(t, p, 1 - p)
  loss = np.where(t, 0.25, 0.75) * ce * (1 - p_t) ** 2
  return (loss * w).sum(axis=(-2, -1)) / w.sum()


def _numpy_dice(x, t, w):
  p = _sigmoid(x)
  return 1 - (2 * (p * t * w).sum(axis=(-2, -1)) + 1) / (((p + t) * w).sum(axis=(-2, -1)) + 1)


def _numpy_iou(pred, t, w):
  return ((pred & t) * w).sum(axis=(-2, -1)) / ((pred | t) * w).sum(axis=(-2, -1))


def test_focal_and_dice_against_numpy():
  rng = np.random.default_rng(0)
  logits = rng.normal(0, 3, (2, 3, 5, 6)).astype(np.float32)
  targets = rng.random((2, 3, 5, 6)) < 0.4
  weights = rng.random((5, 6)) < 0.7
  np.testing.assert_allclose(
    sigmoid_focal_loss(logits, targets, weights), _numpy_focal(logits, targets, weights), rtol=1e-5
  )
  np.testing.assert_allclose(
    dice_loss(logits, targets, weights), _numpy_dice(logits, targets, weights), rtol=1e-5
  )
  unweighted = sigmoid_focal_loss(logits, targets)
  np.testing.assert_allclose(unweighted, _numpy_focal(logits, targets, np.ones((5, 6))), rtol=1e-5)


def test_mask_losses_take_the_best_mask_and_the_true_ious():
  rng = np.random.default_rng(1)
  targets = rng.random((1, 2, 6, 6)) < 0.5  # [B,G,L,L]
  logits = rng.normal(0, 2, (1, 2, 3, 6, 6)).astype(np.float32)
  logits[0, 0, 1] = np.where(targets[0, 0], 6.0, -6.0)  # object 0's second mask is right
  predicted = rng.random((1, 2, 3)).astype(np.float32)
  keep = np.ones((1, 6, 6), bool)
  keep[0, 0] = False  # a void row
  valid = np.array([[True, False]])  # object 1 is padding
  losses, shown = mask_losses(logits, predicted, targets, keep, valid)

  x, t, w = logits[0, 0], targets[0, 0], keep[0]
  focal, dice = _numpy_focal(x, t, w), _numpy_dice(x, t, w)
  assert np.argmin(20 * focal + dice) == 1
  assert float(losses["focal"]) == pytest.approx(focal[1], rel=1e-5)
  assert float(losses["dice"]) == pytest.approx(dice[1], rel=1e-5)
  ious = _numpy_iou(x > 0, t, w)
  assert ious[1] == 1
  assert float(losses["iou"]) == pytest.approx(np.mean((predicted[0, 0] - ious) ** 2), rel=1e-5)
  assert float(shown[0, 0]) == pytest.approx(ious[np.argmax(predicted[0, 0])])


def test_a_tiny_model_learns_a_fixed_batch():
  task = _task(max_instances=2)
  model = InteractiveSam(**tiny_sam.TINY, clicks=1)
  panoptic = np.zeros((2, 64, 64), np.int32)
  panoptic[0, 8:30, 6:40], panoptic[0, 36:60, 30:58] = 1001, 2001
  panoptic[1, 4:20, 4:60], panoptic[1, 28:60, 10:30] = 1001, 1002
  image = np.full((2, 64, 64, 3), 90, np.uint8)
  for colour, value in zip(
    ((220, 40, 40), (40, 200, 60), (40, 60, 220)), (1001, 2001, 1002), strict=True
  ):
    image[panoptic == value] = colour
  batch = {"image": jnp.asarray(image), "panoptic": jnp.asarray(panoptic)}
  variables = tiny_sam.numpy_variables(model, task.inputs(batch))
  optimizer = optax.adam(3e-3)

  @jax.jit
  def step(params, opt_state):
    def loss_fn(params):
      outputs = model.apply(
        {**variables, "params": params},
        task.inputs(batch),
        train=True,
        rngs={"sample": jax.random.key(0)},  # the same prompts every step
        **task.model_kwargs(batch, train=True),
      )
      return task.loss(outputs, batch, 0)

    (loss, parts), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = optimizer.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state, loss, parts

  params, opt_state = variables["params"], optimizer.init(variables["params"])
  losses = []
  for _ in range(11):
    params, opt_state, loss, parts = step(params, opt_state)
    losses.append(float(loss))
    terms = [parts["loss_focal"], parts["loss_dice"], parts["loss_iou"]]
    assert float(sum(terms)) == pytest.approx(losses[-1], rel=1e-5)
  assert losses[-1] < 0.7 * losses[0], losses


def test_scores_and_summary_of_hand_curves():
  task = _task()
  a, b, c = [0.5, 0.86, 0.91, 0.95, 0.95], [0.92, 0.93, 0.93, 0.94, 0.94], [0.1, 0.2, 0.3, 0.4, 0.5]
  junk = [0.0] * 5
  total = None
  for ious, valid, example_valid in [
    ([[a, junk], [junk, junk]], [[True, False], [True, True]], [True, False]),
    ([[b, c]], [[True, True]], [True]),
  ]:
    outputs = {"ious": jnp.asarray(ious), "valid": jnp.asarray(valid)}
    stats = task.eval_stats(outputs, {"valid": jnp.asarray(example_valid)})
    total = task.accumulate(total, stats)
  scores = task.scores(total)
  assert scores["objects"] == 3
  assert scores["miou@1"] == pytest.approx((0.5 + 0.92 + 0.1) / 3)
  assert scores["miou@3"] == pytest.approx((0.91 + 0.93 + 0.3) / 3)
  assert scores["miou@5"] == pytest.approx((0.95 + 0.94 + 0.5) / 3)
  assert scores["noc@85"] == pytest.approx((2 + 1 + 5) / 3)
  assert scores["noc@90"] == pytest.approx((3 + 1 + 5) / 3)
  assert scores["nof@85"] == scores["nof@90"] == 1
  summary = task.summary(scores)
  assert "miou@1" in summary and "0.5067" in summary and "2.6667" in summary


def test_predict_paints_the_most_confident_mask_and_render_shows_it():
  task = _task(max_instances=3)
  masks = np.zeros((1, 3, 4, 4), bool)
  masks[0, 0, :, :2] = True  # left, predicted IoU 0.5
  masks[0, 1, :2] = True  # top, 0.9: wins the top left
  masks[0, 2] = True  # everywhere, but not a valid object
  outputs = {
    "masks": jnp.asarray(masks),
    "scores": jnp.asarray([[0.5, 0.9, 1.0]]),
    "valid": jnp.asarray([[True, True, False]]),
  }
  prediction = np.asarray(task.predict(outputs))
  np.testing.assert_array_equal(prediction[0], [[2, 2, 2, 2]] * 2 + [[1, 1, 0, 0]] * 2)
  image = np.zeros((1, 4, 4, 3), np.uint8)
  (row,) = task.render({"image": image, "panoptic": np.full((1, 4, 4), 1001)}, prediction)
  assert row.shape == (4, 12, 3)
  plain = task.overlay(image[0], prediction[0], {})
  detections = {k: np.asarray(v[0]) for k, v in outputs.items() if k != "masks"}
  detections["boxes"] = np.asarray([[0, 0, 2, 4], [0, 0, 4, 2], [0, 0, 4, 4]], np.float32)
  boxed = task.overlay(image[0], prediction[0], detections)
  assert plain.shape == boxed.shape == (4, 4, 3) and (plain != boxed).any()

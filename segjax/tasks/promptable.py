"""Promptable (interactive) segmentation: SAM segments one object from clicks or a box, scored by
the IoU after each simulated click (RITM's protocol: NoC, NoF, mIoU@k).

Objects are the thing segments of the `panoptic` map, class-agnostic, largest first, up to
`data.max_instances` per image. They are extracted on device (`thing_instances`), in training and
in evaluation alike, so the eval batches need no host-side preparation. The model simulates the
prompts (`segjax.models.sam.interactive`); this task turns its outputs into SAM's losses and the
evaluation's IoU curves into scores.
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from segjax import viz
from segjax.errors import InputError
from segjax.metrics.interactive import interactive_scores
from segjax.models.sam import PIXEL_MEAN, PIXEL_STD
from segjax.models.sam.interactive import mask_ious
from segjax.tasks.base import Batch, Outputs, Task, thing_classes
from segjax.tasks.instance import instances_from_panoptic

LABEL_DIVISOR = 1000
# SAM's loss weights; the best of several masks is the one of lowest focal + dice.
WEIGHTS = {"focal": 20.0, "dice": 1.0, "iou": 1.0}
SUMMARY_KEYS = ("miou@1", "miou@3", "miou@5", "noc@85", "noc@90", "nof@85", "nof@90")


def thing_instances(panoptic, things, max_instances: int, *, ignore_index: int = 255):
  """`instances_from_panoptic`'s masks and validity under jit, for a batch.

  The thing segments (a class in `things`, instance > 0) of `panoptic: i32[B,H,W]`, largest
  first, equal areas in increasing id, as `instances_from_panoptic` orders them ->
  `(masks bool[B,G,H,W], valid bool[B,G])`, G = `max_instances`.
  """
  b = panoptic.shape[0]
  classes = panoptic // LABEL_DIVISOR
  thing = jnp.isin(classes, np.asarray(things)) & (classes != ignore_index)
  thing &= panoptic % LABEL_DIVISOR > 0
  ids = jnp.sort(jnp.where(thing, panoptic, -1).reshape(b, -1), axis=-1)
  position = jnp.arange(ids.shape[1])
  starts = jnp.concatenate([jnp.ones((b, 1), bool), ids[:, 1:] != ids[:, :-1]], axis=1)
  ends = jnp.concatenate([ids[:, 1:] != ids[:, :-1], jnp.ones((b, 1), bool)], axis=1)
  last = jax.lax.cummin(jnp.where(ends, position, ids.shape[1]), axis=1, reverse=True)
  areas = jnp.where(starts & (ids >= 0), last - position + 1, 0)
  # top_k puts equal values in increasing index, i.e. increasing id.
  area, index = jax.lax.top_k(areas, max_instances)
  chosen = jnp.take_along_axis(ids, index, axis=1)
  valid = area > 0
  masks = (panoptic[:, None] == chosen[:, :, None, None]) & valid[:, :, None, None]
  return masks, valid


def sigmoid_focal_loss(logits, targets, weights=None, *, alpha: float = 0.25, gamma: float = 2.0):
  """Focal loss (Lin et al., 2017) of binary masks, the mean over the last two axes of the
  pixels with weight (all when None); `logits: f[...,H,W]`, `targets`: bool or f, same shape."""
  targets = targets.astype(jnp.float32)
  p = jax.nn.sigmoid(logits)
  ce = jnp.maximum(logits, 0) - logits * targets + jnp.log1p(jnp.exp(-jnp.abs(logits)))
  p_t = p * targets + (1 - p) * (1 - targets)
  loss = (alpha * targets + (1 - alpha) * (1 - targets)) * ce * (1 - p_t) ** gamma
  weights = jnp.ones_like(loss) if weights is None else jnp.broadcast_to(weights, loss.shape)
  return jnp.sum(loss * weights, axis=(-2, -1)) / jnp.maximum(jnp.sum(weights, axis=(-2, -1)), 1)


def dice_loss(logits, targets, weights=None):
  """1 − (2·Σpt + 1) / (Σp + Σt + 1) over the last two axes, p = sigmoid(logits), as SAM 2's
  training; pixels weighted by `weights` (all when None)."""
  p, t = jax.nn.sigmoid(logits), targets.astype(jnp.float32)
  weights = 1.0 if weights is None else weights
  numerator = 2 * jnp.sum(p * t * weights, axis=(-2, -1)) + 1
  return 1 - numerator / (jnp.sum((p + t) * weights, axis=(-2, -1)) + 1)


def mask_losses(logits, iou_predictions, targets, keep, valid):
  """SAM's per-iteration losses, each the mean over valid objects.

  Focal and dice of the output with the lowest weighted focal + dice (the best of the multimask
  outputs; the only one otherwise), MSE of every output's predicted IoU against its IoU with the
  target (thresholded at 0).

  Args:
    logits: f32[B,G,K,L,L]. iou_predictions: f32[B,G,K].
    targets: bool[B,G,L,L]. keep: bool[B,L,L] pixels counted. valid: bool[B,G].
  Returns:
    `{"focal", "dice", "iou"}` scalars (unweighted), and f32[B,G] the true IoU of the output
    with the highest predicted IoU (the one the model shows).
  """
  targets, keep = targets[:, :, None], keep[:, None, None]
  focal = sigmoid_focal_loss(logits, targets, keep)
  dice = dice_loss(logits, targets, keep)
  best = jnp.argmin(WEIGHTS["focal"] * focal + WEIGHTS["dice"] * dice, axis=-1)[..., None]
  actual = jax.lax.stop_gradient(mask_ious(logits > 0, targets, keep))
  count = jnp.maximum(valid.sum(), 1)

  def mean(per_object):
    return jnp.sum(jnp.where(valid, per_object, 0)) / count

  losses = {
    "focal": mean(jnp.take_along_axis(focal, best, axis=-1)[..., 0]),
    "dice": mean(jnp.take_along_axis(dice, best, axis=-1)[..., 0]),
    "iou": mean(jnp.mean((iou_predictions - actual) ** 2, axis=-1)),
  }
  shown = jnp.argmax(iou_predictions, axis=-1)[..., None]
  return losses, jnp.take_along_axis(actual, shown, axis=-1)[..., 0]


class PromptableTask(Task):
  """Interactive segmentation with `InteractiveSam`: SAM's losses, RITM's click protocol.

  The loss, per simulated-prompt iteration and averaged over them and the valid objects:
  20·focal + dice of the best mask + MSE of the predicted IoUs (SAM's `WEIGHTS`). Logged apart:
  `loss_focal`, `loss_dice`, `loss_iou` (weighted, they sum to the loss) and `iou_first`,
  `iou_last`, the mean IoU of the shown mask after the first prompt and after the last click.
  """

  fields = ("image", "panoptic")
  per_pixel_logits = False

  def __init__(self, config, dataset):
    super().__init__(config, dataset)
    self.things = thing_classes(config, dataset)
    self.max_instances = config.data.max_instances

  def inputs(self, batch: Batch) -> jax.Array:
    """`image: u8[B,H,W,3]` -> f32[B,H,W,3] normalised as SAM's `preprocess` (the model pads)."""
    mean, std = np.asarray(PIXEL_MEAN, np.float32), np.asarray(PIXEL_STD, np.float32)
    return (batch["image"].astype(jnp.float32) - mean) / std

  def targets(self, batch: Batch) -> dict[str, jax.Array]:
    """The model's `targets`: the objects (`masks`, `valid`) and the void pixels (`ignore`)."""
    panoptic = batch["panoptic"]
    masks, valid = thing_instances(
      panoptic, self.things, self.max_instances, ignore_index=self.ignore_index
    )
    if "valid" in batch:  # eval batches' padding examples
      valid &= batch["valid"][:, None]
    return {
      "masks": masks,
      "valid": valid,
      "ignore": panoptic // LABEL_DIVISOR == self.ignore_index,
    }

  def model_kwargs(self, batch: Batch, train: bool) -> dict[str, Any]:
    """The objects to prompt, in training and in evaluation (the prompts come from them)."""
    del train
    return {"targets": self.targets(batch)}

  def loss(self, outputs: Outputs, batch: Batch, step):
    del batch, step
    keep, valid = ~outputs["ignore"], outputs["valid"]
    per_iteration = [
      mask_losses(logits, iou, outputs["targets"], keep, valid)
      for logits, iou in zip(outputs["logits"], outputs["iou_predictions"], strict=True)
    ]
    parts = {
      f"loss_{name}": weight * jnp.mean(jnp.stack([losses[name] for losses, _ in per_iteration]))
      for name, weight in WEIGHTS.items()
    }
    count = jnp.maximum(valid.sum(), 1)
    shown = {"iou_first": per_iteration[0][1], "iou_last": per_iteration[-1][1]}
    metrics = {k: jnp.sum(jnp.where(valid, v, 0)) / count for k, v in shown.items()}
    return sum(parts.values()), {**parts, **metrics}

  def eval_stats(self, outputs: Outputs, batch: Batch) -> dict[str, jax.Array]:
    """The IoU after each click, `ious: f32[B,G,clicks]`, and which objects count."""
    return {"ious": outputs["ious"], "valid": outputs["valid"] & batch["valid"][:, None]}

  def accumulate(self, total, stats):
    """The IoU curves of the valid objects, one row each, on the host."""
    stats = jax.device_get(stats)
    curves = np.asarray(stats["ious"][stats["valid"]], np.float64)
    return curves if total is None else np.concatenate([total, curves])

  def scores(self, stats) -> dict[str, Any]:
    """`interactive_scores` of the IoU curves (clicks = their length), and `objects`."""
    if stats is None or len(stats) == 0:
      raise InputError("The evaluation split has no thing instances to prompt.")
    curves = np.asarray(stats)
    return {**interactive_scores(curves, max_clicks=curves.shape[1]), "objects": len(curves)}

  def predict(self, outputs: Outputs) -> jax.Array:
    """An instance map `i32[B,H,W]`: object g + 1 where its (last-click) mask covers the pixel,
    the highest predicted IoU on top; 0 elsewhere."""
    masks = outputs["masks"] & outputs["valid"][:, :, None, None]
    scores = jnp.where(masks, outputs["scores"][:, :, None, None], -jnp.inf)
    return jnp.where(masks.any(axis=1), jnp.argmax(scores, axis=1) + 1, 0).astype(jnp.int32)

  def render(self, batch, predictions):
    """Image, the objects (ids g + 1, the colours of the prediction's) and the prediction."""
    rows = []
    for image, panoptic, pred in zip(batch["image"], batch["panoptic"], predictions, strict=True):
      gt = instances_from_panoptic(
        panoptic, self.things, self.max_instances, ignore_index=self.ignore_index
      )
      ids = np.arange(1, self.max_instances + 1)[:, None, None]
      truth = np.max(np.where(gt["gt_masks"], ids, 0), axis=0, initial=0)
      shown = [viz.instance_overlay(image, truth), viz.instance_overlay(image, pred)]
      rows.append(np.concatenate([image, *shown], axis=1))
    return rows

  def overlay(self, image, prediction, detections):
    """Object colours and outlines; with detections (the predict CLI's `boxes`, `scores`,
    `valid`), each valid object's box and predicted IoU in its colour."""
    drawn = viz.instance_overlay(image, prediction)
    if not detections:
      return drawn
    shown = np.nonzero(detections["valid"])[0]
    boxes, scores = detections["boxes"][shown], detections["scores"][shown]
    return viz.label_detections(drawn, boxes, ["IoU"] * len(shown), scores, ids=shown + 1)

  def summary(self, scores: dict[str, Any]) -> str:
    header = "".join(f"{key:>9}" for key in SUMMARY_KEYS)
    values = "".join(
      f"{scores[k]:>9d}" if k.startswith("nof") else f"{scores[k]:>9.4f}" for k in SUMMARY_KEYS
    )
    return f"{'objects':<9}{header}\n{scores['objects']:<9d}{values}"

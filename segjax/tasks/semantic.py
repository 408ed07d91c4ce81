"""Semantic segmentation: a class per pixel, trained with `config.loss.terms`, scored by mIoU."""

import inspect
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from segjax import viz
from segjax.data.stats import train_class_counts
from segjax.errors import InputError
from segjax.losses import LOSSES, class_weights_from_counts, combine, signed_distance_maps
from segjax.metrics import (
  boundary_confusion_stats,
  boundary_iou_scores,
  confusion_matrix,
  semantic_scores,
)
from segjax.tasks.base import Batch, Outputs, Task


class SemanticTask(Task):
  """Targets are `semantic: u8[B,H,W]`; the model returns `logits: f32[B,H,W,C]`."""

  fields = ("image", "semantic")

  def __init__(self, config, dataset):
    super().__init__(config, dataset)
    terms = resolve_class_weights(config, dataset)
    self._loss = combine(terms, LOSSES, ignore_index=self.ignore_index)

  def prepare(self, example):
    if "distance_maps" in self._loss.inputs:
      example = dict(example)
      example["distance_maps"] = signed_distance_maps(
        example["semantic"], self.num_classes, ignore_index=self.ignore_index
      )
    return example

  def loss(self, outputs: Outputs, batch: Batch, step):
    inputs = {name: batch[name] for name in self._loss.inputs}
    labels = batch["semantic"].astype(jnp.int32)
    total, parts = self._loss(outputs["logits"], labels, step=step, **inputs)
    return total, {f"loss_{name}": value for name, value in parts.items()}

  def predict(self, outputs: Outputs) -> jax.Array:
    return jnp.argmax(outputs["logits"], axis=-1).astype(jnp.int32)

  def eval_stats(self, outputs: Outputs, batch: Batch) -> dict[str, jax.Array]:
    labels = batch["semantic"].astype(jnp.int32)
    labels = jnp.where(batch["valid"][:, None, None], labels, self.ignore_index)
    pred = self.predict(outputs)
    cm = confusion_matrix(pred, labels, self.num_classes, ignore_index=self.ignore_index)
    inter, union = boundary_confusion_stats(
      pred, labels, self.num_classes, ignore_index=self.ignore_index
    )
    return {"confusion_matrix": cm, "boundary_intersection": inter, "boundary_union": union}

  def scores(self, stats: dict[str, Any]) -> dict[str, Any]:
    scores = semantic_scores(np.asarray(stats["confusion_matrix"]))
    scores.update(boundary_iou_scores(stats["boundary_intersection"], stats["boundary_union"]))
    names = self.dataset.class_names
    for key in ("per_class_iou", "per_class_accuracy", "per_class_boundary_iou"):
      scores[key] = dict(zip(names, np.asarray(scores[key], np.float64).tolist(), strict=True))
    return scores

  def render(self, batch, predictions):
    return [
      viz.comparison_row(image, labels, pred, self.num_classes, ignore_index=self.ignore_index)
      for image, labels, pred in zip(batch["image"], batch["semantic"], predictions, strict=True)
    ]

  def overlay(self, image, prediction, detections):
    del detections
    return viz.overlay(image, prediction, self.num_classes)

  def summary(self, scores: dict[str, Any]) -> str:
    def cell(value: float) -> str:
      return f"{'n/a' if np.isnan(value) else f'{value:.4f}':>14}"

    rows = [f"{'class':<16}{'IoU':>14}{'boundary IoU':>14}"]
    for name, iou in scores["per_class_iou"].items():
      rows.append(f"{name:<16}{cell(iou)}{cell(scores['per_class_boundary_iou'][name])}")
    rows.append(f"{'mean':<16}{cell(scores['miou'])}{cell(scores['boundary_iou'])}")
    rows.append(f"{'pixel accuracy':<16}{cell(scores['pixel_accuracy'])}")
    return "\n".join(rows)


def resolve_class_weights(config, dataset) -> dict[str, dict[str, Any]]:
  """`config.loss.terms` with class weights made concrete for the terms that take them.

  A term's own `class_weights` option wins over `config.loss.class_weights`. Either may be a
  method ("inverse", "median", "enet": computed from the train split's class pixel counts, counted
  once and cached beside the data) or one weight per class.
  """
  terms = config.loss.terms.to_dict()
  for name, options in terms.items():
    if "class_weights" not in inspect.signature(LOSSES[name]).parameters:
      continue
    spec = options.get("class_weights", config.loss.class_weights)
    if spec is None:
      continue
    key = f"loss.terms.{name}.class_weights" if "class_weights" in options else "loss.class_weights"
    if isinstance(spec, str):
      _, counts = train_class_counts(config.data, dataset)
      try:
        weights = class_weights_from_counts(counts, method=spec)
      except ValueError as error:
        raise InputError(f"config.{key}={spec!r}: {error}") from error
    else:
      weights = np.asarray(spec, np.float32)
      if weights.shape != (dataset.num_classes,):
        raise InputError(
          f"config.{key} has {weights.size} weights; the data set has {dataset.num_classes} "
          f"classes ({', '.join(dataset.class_names)})."
        )
    options["class_weights"] = np.asarray(weights, np.float32)
  return terms

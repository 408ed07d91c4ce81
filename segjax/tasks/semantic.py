"""Semantic segmentation: a class per pixel, trained with `config.loss.terms`, scored by mIoU."""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from segjax import viz
from segjax.losses import LOSSES, combine
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
    self._loss = combine(config.loss.terms.to_dict(), LOSSES, ignore_index=self.ignore_index)

  def loss(self, outputs: Outputs, batch: Batch):
    total, parts = self._loss(outputs["logits"], batch["semantic"].astype(jnp.int32))
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

  def summary(self, scores: dict[str, Any]) -> str:
    def cell(value: float) -> str:
      return f"{'n/a' if np.isnan(value) else f'{value:.4f}':>14}"

    rows = [f"{'class':<16}{'IoU':>14}{'boundary IoU':>14}"]
    for name, iou in scores["per_class_iou"].items():
      rows.append(f"{name:<16}{cell(iou)}{cell(scores['per_class_boundary_iou'][name])}")
    rows.append(f"{'mean':<16}{cell(scores['miou'])}{cell(scores['boundary_iou'])}")
    rows.append(f"{'pixel accuracy':<16}{cell(scores['pixel_accuracy'])}")
    return "\n".join(rows)

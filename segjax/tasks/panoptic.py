"""Panoptic segmentation: a class for every pixel and an instance for every thing pixel, scored by
panoptic quality (PQ).

Predictions and labels are panoptic maps, `class * 1000 + instance` (stuff: instance 0; void:
`ignore_index * 1000`). Two models, each with its own instance branch next to a semantic head:

- `panoptic_deeplab` (bottom-up): centre heatmap and offsets, trained against Gaussian centres
  and offsets made per example on the host; segments from centre NMS and grouping under jit.
- `panoptic_fpn` (top-down): Mask R-CNN over the thing classes, its detections pasted over the
  semantic head's stuff by the Panoptic FPN merge.

Settings are in `config.panoptic`.
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from segjax import viz
from segjax.data import coco_panoptic
from segjax.errors import InputError
from segjax.losses import cross_entropy
from segjax.losses.detection import mask_rcnn_losses
from segjax.losses.panoptic import center_loss, hard_pixel_cross_entropy, offset_loss
from segjax.metrics import confusion_matrix, semantic_scores
from segjax.metrics.panoptic import PanopticStats, panoptic_scores, panoptic_stats
from segjax.models.panoptic.merge import merge_panoptic
from segjax.models.panoptic.postprocess import panoptic_deeplab_postprocess
from segjax.models.panoptic.targets import panoptic_deeplab_targets
from segjax.tasks.base import Batch, Outputs, Task, thing_classes
from segjax.tasks.instance import detection_targets, instances_from_panoptic

LABEL_DIVISOR = 1000


class CenterOffsetBranch:
  """Panoptic-DeepLab: Gaussian centre heatmap (MSE) and offsets to the centre (L1), with
  cross-entropy over the hardest pixels, small instances weighted up."""

  def __init__(self, task: "PanopticTask"):
    self.task = task
    self.options = task.config.panoptic

  def model_args(self) -> dict[str, Any]:
    return {}

  def prepare(self, example):
    o, task = self.options, self.task
    targets = panoptic_deeplab_targets(
      example["panoptic"],
      things=task.things,
      ignore_index=task.ignore_index,
      label_divisor=LABEL_DIVISOR,
      sigma=o.sigma,
      small_instance_area=o.small_instance_area,
      small_instance_weight=o.small_instance_weight,
    )
    return {**example, **targets}

  def model_kwargs(self, batch, train):
    del batch, train
    return {}

  def loss(self, outputs, batch):
    o = self.options
    semantic = hard_pixel_cross_entropy(
      outputs["semantic_logits"],
      batch["semantic"].astype(jnp.int32),
      pixel_weights=batch["semantic_weights"],
      top_fraction=o.hard_pixel_fraction,
      ignore_index=self.task.ignore_index,
    )
    return {
      "loss_semantic": o.semantic_weight * semantic,
      "loss_center": o.center_weight
      * center_loss(outputs["center"], batch["center"], batch["center_weights"]),
      "loss_offset": o.offset_weight
      * offset_loss(outputs["offset"], batch["offset"], batch["offset_weights"]),
    }

  def predict(self, outputs):
    o, task = self.options, self.task
    return panoptic_deeplab_postprocess(
      outputs["semantic_logits"],
      outputs["center"],
      outputs["offset"],
      things=task.things,
      label_divisor=LABEL_DIVISOR,
      ignore_index=task.ignore_index,
      center_threshold=o.center_threshold,
      nms_kernel=o.nms_kernel,
      top_k=o.top_k,
      stuff_area=o.stuff_area,
    )


class DetectionBranch:
  """Panoptic FPN: Mask R-CNN's losses over the thing instances, cross-entropy on the semantic
  head; the merge paints detections by score, then the stuff that remains."""

  def __init__(self, task: "PanopticTask"):
    self.task = task
    self.options = task.config.panoptic

  def model_args(self) -> dict[str, Any]:
    return {"things": self.task.things}

  def prepare(self, example):
    task = self.task
    instances = instances_from_panoptic(
      example["panoptic"], task.things, task.max_instances, ignore_index=task.ignore_index
    )
    semantic = (example["panoptic"] // LABEL_DIVISOR).astype(np.uint8)
    return {**example, **instances, "semantic": semantic}

  def model_kwargs(self, batch, train):
    return {"targets": detection_targets(batch)} if train else {}

  def loss(self, outputs, batch):
    semantic = cross_entropy(
      outputs["semantic_logits"],
      batch["semantic"].astype(jnp.int32),
      ignore_index=self.task.ignore_index,
    )
    return {**mask_rcnn_losses(outputs), "loss_semantic": self.options.semantic_weight * semantic}

  def predict(self, outputs):
    o, task = self.options, self.task
    return merge_panoptic(
      outputs["masks"],
      outputs["scores"],
      outputs["labels"],
      outputs["valid"],
      jnp.argmax(outputs["semantic_logits"], axis=-1).astype(jnp.int32),
      things=task.things,
      stuff=task.stuff,
      label_divisor=LABEL_DIVISOR,
      ignore_index=task.ignore_index,
      score_threshold=o.score_threshold,
      overlap_threshold=o.overlap_threshold,
      stuff_area=o.stuff_area,
    )


BRANCHES = {"panoptic_deeplab": CenterOffsetBranch, "panoptic_fpn": DetectionBranch}


class PanopticTask(Task):
  """Targets come from the augmented `panoptic: i32[B,H,W]`; predictions are panoptic maps."""

  fields = ("image", "panoptic")
  per_pixel_logits = False

  def __init__(self, config, dataset):
    super().__init__(config, dataset)
    self.things = thing_classes(config, dataset)
    if config.model.name not in BRANCHES:
      raise InputError(
        f"config.model.name={config.model.name!r} is not a panoptic model; use one of "
        f"{sorted(BRANCHES)}."
      )
    self.stuff = tuple(int(c) for c in dataset.stuff)
    self.max_instances = config.data.max_instances
    self.branch = BRANCHES[config.model.name](self)

  def model_args(self) -> dict[str, Any]:
    return {"num_classes": self.num_classes, **self.branch.model_args()}

  def prepare(self, example):
    return self.branch.prepare(example)

  def model_kwargs(self, batch: Batch, train: bool) -> dict[str, Any]:
    return self.branch.model_kwargs(batch, train)

  def loss(self, outputs: Outputs, batch: Batch, step):
    del step
    parts = self.branch.loss(outputs, batch)
    return sum(parts.values()), parts

  def predict(self, outputs: Outputs) -> jax.Array:
    """`i32[B,H,W]` panoptic ids."""
    return self.branch.predict(outputs)

  def eval_stats(self, outputs: Outputs, batch: Batch) -> dict[str, jax.Array]:
    valid = batch["valid"][:, None, None]
    truth = jnp.where(valid, batch["panoptic"], self.ignore_index * LABEL_DIVISOR)
    semantic_pred = jnp.argmax(outputs["semantic_logits"], axis=-1)
    return {
      "panoptic": self.predict(outputs),
      "truth": truth,
      # The semantic head's own mIoU, next to PQ: where a model loses, in classes or grouping.
      "confusion_matrix": confusion_matrix(
        semantic_pred, truth // LABEL_DIVISOR, self.num_classes, ignore_index=self.ignore_index
      ),
    }

  def accumulate(self, total, stats):
    """PQ statistics per image on the host (matching segments is not a sum), summed."""
    stats = jax.device_get(stats)
    batch = panoptic_stats(
      stats["panoptic"],
      stats["truth"],
      num_classes=self.num_classes,
      things=self.things,
      stuff=self.stuff,
      label_divisor=LABEL_DIVISOR,
      ignore_index=self.ignore_index,
    )
    if total is None:
      return {"pq": batch, "confusion_matrix": stats["confusion_matrix"]}
    return {
      "pq": total["pq"] + batch,
      "confusion_matrix": total["confusion_matrix"] + stats["confusion_matrix"],
    }

  def scores(self, stats) -> dict[str, Any]:
    pq: PanopticStats = stats["pq"]
    result = panoptic_scores(pq, things=self.things, stuff=self.stuff)
    per_class = result.pop("per_class")
    names = self.dataset.class_names
    scores = {k: v if isinstance(v, int) else float(v) for k, v in result.items()}
    for key in ("pq", "sq", "rq"):
      scores[f"per_class_{key}"] = {names[c]: float(v[key]) for c, v in per_class.items()}
    scores["miou"] = float(semantic_scores(np.asarray(stats["confusion_matrix"]))["miou"])
    return scores

  def colours(self, image: np.ndarray, panoptic: np.ndarray) -> np.ndarray:
    return viz.panoptic_overlay(
      image,
      panoptic,
      num_classes=self.num_classes,
      things=self.things,
      label_divisor=LABEL_DIVISOR,
      ignore_index=self.ignore_index,
    )

  def render(self, batch, predictions):
    return [
      np.concatenate([image, self.colours(image, truth), self.colours(image, pred)], axis=1)
      for image, truth, pred in zip(batch["image"], batch["panoptic"], predictions, strict=True)
    ]

  def overlay(self, image, prediction, detections):
    del detections
    return self.colours(image, prediction)

  def write_predictions(self, output, predictions) -> None:
    """The COCO panoptic format: `output/panoptic/<name>.png` and `output/panoptic.json`."""
    coco_panoptic.write_predictions(
      output,
      predictions,
      categories=self.categories(),
      label_divisor=LABEL_DIVISOR,
      ignore_index=self.ignore_index,
    )

  def categories(self) -> list[dict]:
    """COCO panoptic categories of the classes: the data set's ids where it has them, else
    class + 1 (COCO ids start at 1)."""
    ids = self.dataset.category_ids or tuple(range(1, self.num_classes + 1))
    things = set(self.things)
    return [
      {"id": int(ids[c]), "name": name, "isthing": int(c in things)}
      for c, name in enumerate(self.dataset.class_names)
    ]

  def summary(self, scores: dict[str, Any]) -> str:
    rows = [f"{'':<16}{'PQ':>9}{'SQ':>9}{'RQ':>9}{'classes':>9}"]
    for label, suffix in (("all", ""), ("things", "_things"), ("stuff", "_stuff")):
      values = "".join(f"{scores[f'{k}{suffix}']:>9.4f}" for k in ("pq", "sq", "rq"))
      rows.append(f"{label:<16}{values}{scores[f'n{suffix}']:>9d}")
    rows.append(f"{'class':<16}{'PQ':>9}{'SQ':>9}{'RQ':>9}")
    for name, pq in scores["per_class_pq"].items():
      sq, rq = scores["per_class_sq"][name], scores["per_class_rq"][name]
      rows.append(f"{name:<16}{pq:>9.4f}{sq:>9.4f}{rq:>9.4f}")
    rows.append(f"semantic head mIoU {scores['miou']:.4f}")
    return "\n".join(rows)

"""Instance segmentation: a mask, class and score per object (Mask R-CNN), scored by COCO mask AP.

Targets come from the augmented `panoptic` map (class * 1000 + instance): each thing segment is an
instance. They are made per example in the loader's threads and padded to `data.max_instances`.
The model's classes are the data set's thing classes, in order (`dataset.things`).
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from segjax import viz
from segjax.losses.detection import mask_rcnn_losses
from segjax.metrics import coco_mask_ap
from segjax.tasks.base import Batch, Outputs, Task, thing_classes

LABEL_DIVISOR = 1000
TARGETS = ("gt_boxes", "gt_labels", "gt_masks", "gt_valid")


def instances_from_panoptic(panoptic, things, max_instances, *, ignore_index=255):
  """The thing segments of `panoptic: i32[H,W]`, largest first, padded to `max_instances`.

  Returns `gt_boxes f32[G,4]` (x1, y1, x2, y2: pixel edges, so a one-pixel object is 1 wide),
  `gt_labels i32[G]` (index into `things`), `gt_masks bool[G,H,W]`, `gt_valid bool[G]`.
  """
  h, w = panoptic.shape
  ids, areas = np.unique(panoptic, return_counts=True)
  classes = ids // LABEL_DIVISOR
  thing_index = {c: i for i, c in enumerate(things)}
  keep = [
    k
    for k in np.argsort(-areas, kind="stable")
    if classes[k] in thing_index and classes[k] != ignore_index and ids[k] % LABEL_DIVISOR > 0
  ][:max_instances]
  boxes = np.zeros((max_instances, 4), np.float32)
  labels = np.zeros((max_instances,), np.int32)
  masks = np.zeros((max_instances, h, w), bool)
  valid = np.zeros((max_instances,), bool)
  for slot, k in enumerate(keep):
    mask = panoptic == ids[k]
    rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    boxes[slot] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    labels[slot] = thing_index[classes[k]]
    masks[slot], valid[slot] = mask, True
  return {"gt_boxes": boxes, "gt_labels": labels, "gt_masks": masks, "gt_valid": valid}


def detection_targets(batch: Batch) -> dict[str, jax.Array]:
  """Mask R-CNN's `targets` (boxes, labels, masks, valid) from a batch of `prepare`d examples."""
  return {k.removeprefix("gt_"): batch[k] for k in TARGETS}


class InstanceTask(Task):
  """Mask R-CNN, trained with its own losses (`segjax.losses.detection`)."""

  fields = ("image", "panoptic")
  per_pixel_logits = False

  def __init__(self, config, dataset):
    super().__init__(config, dataset)
    self.things = thing_classes(config, dataset)
    self.max_instances = config.data.max_instances

  @property
  def num_classes(self) -> int:
    return len(self.things)

  @property
  def class_names(self) -> tuple[str, ...]:
    return tuple(self.dataset.class_names[c] for c in self.things)

  def prepare(self, example):
    example = dict(example)
    example.update(
      instances_from_panoptic(
        example["panoptic"], self.things, self.max_instances, ignore_index=self.ignore_index
      )
    )
    return example

  def model_kwargs(self, batch: Batch, train: bool) -> dict[str, Any]:
    return {"targets": detection_targets(batch)} if train else {}

  def loss(self, outputs: Outputs, batch: Batch, step):
    del batch, step
    parts = mask_rcnn_losses(outputs)
    return sum(parts.values()), parts

  def predict(self, outputs: Outputs, *, min_score: float = 0.5) -> jax.Array:
    """An instance map `i32[B,H,W]`: dataset class * 1000 + detection rank + 1 where the mask of
    a detection scoring at least `min_score` covers the pixel (higher scores on top), 0
    elsewhere. (COCO AP reads every detection, not this map.)"""
    masks = outputs["masks"]
    valid = outputs["valid"] & (outputs["scores"] >= min_score)
    classes = jnp.asarray(self.things, jnp.int32)[outputs["labels"]]
    rank = jnp.arange(masks.shape[1], dtype=jnp.int32)
    ids = jnp.where(valid, classes * LABEL_DIVISOR + rank + 1, 0)
    # Detections are sorted by score: the first that covers a pixel wins.
    covered = masks & valid[:, :, None, None]
    first = jnp.argmax(covered, axis=1)
    return jnp.where(
      covered.any(1), jnp.take_along_axis(ids[:, :, None, None], first[:, None], 1)[:, 0], 0
    )

  def eval_stats(self, outputs: Outputs, batch: Batch) -> dict[str, jax.Array]:
    return {
      "masks": outputs["masks"],
      "scores": outputs["scores"],
      "labels": outputs["labels"],
      "valid": outputs["valid"],
      "panoptic": batch["panoptic"],
      "example_valid": batch["valid"],
    }

  def accumulate(self, total, stats):
    """Per-image detections and ground truth, on the host (COCO AP is not a sum)."""
    total = total or {"predictions": [], "ground_truth": []}
    stats = jax.device_get(stats)
    for i in np.nonzero(stats["example_valid"])[0]:
      keep = stats["valid"][i]
      total["predictions"].append(
        {
          "masks": stats["masks"][i][keep],
          "scores": stats["scores"][i][keep],
          "labels": stats["labels"][i][keep],
        }
      )
      gt = instances_from_panoptic(
        stats["panoptic"][i], self.things, 1000, ignore_index=self.ignore_index
      )
      total["ground_truth"].append(
        {"masks": gt["gt_masks"][gt["gt_valid"]], "labels": gt["gt_labels"][gt["gt_valid"]]}
      )
    return total

  def scores(self, stats) -> dict[str, Any]:
    result = coco_mask_ap(
      stats["predictions"], stats["ground_truth"], class_names=list(self.class_names)
    )
    scores = {f"mask_{k.lower()}": float(v) for k, v in result.items() if k != "per_class_AP"}
    scores["per_class_mask_ap"] = {str(k): float(v) for k, v in result["per_class_AP"].items()}
    return scores

  def render(self, batch, predictions):
    rows = []
    for image, panoptic, pred in zip(batch["image"], batch["panoptic"], predictions, strict=True):
      truth = viz.instance_overlay(image, panoptic, ignore_index=self.ignore_index)
      rows.append(np.concatenate([image, truth, viz.instance_overlay(image, pred)], axis=1))
    return rows

  def overlay(self, image, prediction, detections, *, min_score: float = 0.5):
    """Instance colours and outlines, with box, class and score of each detection scoring at least
    `min_score` (the colours match: a detection's colour is that of its id in `prediction`)."""
    drawn = viz.instance_overlay(image, prediction)
    shown = np.nonzero(detections["valid"] & (detections["scores"] >= min_score))[0]
    classes = np.asarray(self.things)[detections["labels"][shown]]
    return viz.label_detections(
      drawn,
      detections["boxes"][shown],
      [self.dataset.class_names[c] for c in classes],
      detections["scores"][shown],
      ids=classes * LABEL_DIVISOR + shown + 1,
    )

  def summary(self, scores: dict[str, Any]) -> str:
    keys = ("mask_ap", "mask_ap50", "mask_ap75", "mask_aps", "mask_apm", "mask_apl")
    rows = [f"{'mask AP':<16}" + "".join(f"{k.removeprefix('mask_'):>9}" for k in keys)]
    rows.append(f"{'':<16}" + "".join(f"{scores[k]:>9.4f}" for k in keys))
    rows.append(f"{'class':<16}{'AP':>9}")
    for name, ap in scores["per_class_mask_ap"].items():
      rows.append(f"{name:<16}{ap:>9.4f}")
    return "\n".join(rows)

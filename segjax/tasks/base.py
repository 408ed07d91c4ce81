"""The contract between the one training loop and a segmentation flavour."""

import abc
import pathlib
from collections.abc import Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from segjax.data import Dataset
from segjax.errors import InputError

Batch = dict[str, jax.Array]
Outputs = dict[str, jax.Array]


def thing_classes(config, dataset: Dataset) -> tuple[int, ...]:
  """The ids of `dataset`'s thing classes, which the instance, panoptic and promptable tasks need.

  Raises:
    InputError: the data set has no instances.
  """
  if not dataset.things:
    hint = ""
    if config.data.name == "folder":
      hint = ": give each split an instances/ folder of instance masks (README, your own data)"
    raise InputError(
      f"Task {config.task!r} needs objects (thing classes with instance masks); the data set "
      f"{config.data.name!r} has none{hint}."
    )
  return tuple(int(c) for c in dataset.things)


class Task(abc.ABC):
  """What the loop needs to know about a flavour: inputs, loss, evaluation statistics, scores.

  Methods called inside `jit` (`inputs`, `loss`, `eval_stats`, `predict`) are pure functions of
  arrays. `scores` and `render` run on the host.
  """

  fields: tuple[str, ...]  # example fields the task reads from the data set
  # Whether the model's outputs are per-pixel `logits`, which sliding windows and test-time
  # augmentation can combine (`config.eval.mode`, `scales`, `flip`).
  per_pixel_logits: bool = True

  def __init__(self, config, dataset: Dataset):
    self.config = config
    self.dataset = dataset
    self.ignore_index = config.data.ignore_index
    self._mean = np.asarray(config.data.mean, np.float32) * 255
    self._std = np.asarray(config.data.std, np.float32) * 255

  @property
  def num_classes(self) -> int:
    return self.dataset.num_classes

  def model_args(self) -> dict[str, Any]:
    """Constructor arguments of the model that come from the data: its class count."""
    return {"num_classes": self.num_classes}

  def prepare(self, example: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Host-side targets computed per augmented training example (none by default)."""
    return example

  def model_kwargs(self, batch: Batch, train: bool) -> dict[str, Any]:
    """Keyword arguments of the model besides the images, in training and evaluation (none by
    default; Mask R-CNN's training targets; the objects a promptable model is prompted on)."""
    del batch, train
    return {}

  def accumulate(self, total: Any, stats: Any) -> Any:
    """Adds one batch's `eval_stats` to the running `total` (None at first): a sum by default."""
    return stats if total is None else jax.tree.map(lambda a, b: a + b, total, stats)

  def inputs(self, batch: Batch) -> jax.Array:
    """`image: u8[B,H,W,3]` -> normalised f32[B,H,W,3], on device so the host sends bytes."""
    return (batch["image"].astype(jnp.float32) - self._mean) / self._std

  @abc.abstractmethod
  def loss(
    self, outputs: Outputs, batch: Batch, step: jax.Array
  ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Returns the scalar loss and named scalars to log; `step` drives loss-weight ramps."""

  @abc.abstractmethod
  def eval_stats(self, outputs: Outputs, batch: Batch) -> Any:
    """Summable statistics of one batch (a pytree of arrays), respecting `batch["valid"]`."""

  @abc.abstractmethod
  def scores(self, stats: Any) -> dict[str, Any]:
    """Host-side scores from summed statistics; includes `config.eval.metric`."""

  @abc.abstractmethod
  def predict(self, outputs: Outputs) -> jax.Array:
    """Per-pixel predictions from model outputs."""

  @abc.abstractmethod
  def render(self, batch: dict[str, np.ndarray], predictions: np.ndarray) -> list[np.ndarray]:
    """u8 images that show predictions against the truth, one per example."""

  @abc.abstractmethod
  def overlay(self, image: np.ndarray, prediction: np.ndarray, detections: dict) -> np.ndarray:
    """`prediction` (one image's `predict` output, with the model's per-object `detections` for
    tasks that have them, else {}) drawn over `image: u8[H,W,3]`."""

  def write_predictions(
    self, output: pathlib.Path, predictions: Iterable[tuple[str, np.ndarray]]
  ) -> None:
    """Writes `(name, prediction)` pairs (one image's `predict` output each, consumed one at a
    time) under `output`: `<name>_labels.png`, 8-bit, or 16-bit for ids of 256 and more."""
    for name, labels in predictions:
      if labels.max(initial=0) < 256:
        Image.fromarray(labels.astype(np.uint8), mode="L").save(output / f"{name}_labels.png")
      else:
        Image.fromarray(labels.astype(np.uint16)).save(output / f"{name}_labels.png")

  @abc.abstractmethod
  def summary(self, scores: dict[str, Any]) -> str:
    """A printable table of the scores."""

"""Builds a TFDS data set on first use and reads it back as random-access examples."""

import numpy as np
import tensorflow_datasets as tfds

from segjax.data.dataset import to_uint8_labels
from segjax.errors import InputError


class TfdsSource:
  """Wraps `builder.as_data_source(split)`: squeezes label channels, stacks instance lists."""

  def __init__(self, builder: tfds.core.DatasetBuilder, split: str):
    if split not in builder.info.splits:
      raise InputError(
        f"Split {split!r} is not in {builder.name}; it has {sorted(builder.info.splits)}."
      )
    self._source = builder.as_data_source(split=split)

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index: int) -> dict:
    raw = self._source[index]
    example = {"image": raw["image"], "semantic": to_uint8_labels(raw["semantic"])}
    if "panoptic" in raw:
      example["panoptic"] = raw["panoptic"]
    if "objects" in raw:
      objects = raw["objects"]
      size = example["semantic"].shape
      # TFDS returns a sequence as a list of arrays; an image with no object gives empty lists.
      example["masks"] = np.asarray(objects["mask"], bool).reshape(-1, *size)
      example["boxes"] = np.asarray(objects["box"], np.float32).reshape(-1, 4)
      example["instance_labels"] = np.asarray(objects["label"], np.int32).reshape(-1)
    return example


def prepare(builder: tfds.core.DatasetBuilder) -> None:
  """Builds the data set once; other hosts wait until the first has written it."""
  import jax
  from jax.experimental import multihost_utils

  if jax.process_index() == 0 and not builder.is_prepared():
    print(f"Building {builder.name}/{builder.builder_config.name} into {builder.data_dir} (once).")
    builder.download_and_prepare(file_format="array_record")
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(f"prepared {builder.name}")

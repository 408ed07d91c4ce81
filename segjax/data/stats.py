"""Per-class pixel counts of a split, counted once and cached beside the data."""

import json
import pathlib

import numpy as np
from tqdm import tqdm

from segjax.data.dataset import Dataset


def class_pixel_counts(
  dataset: Dataset, *, split: str, ignore_index: int, cache_key: str
) -> np.ndarray:
  """Pixels of each class over every example of a split (void skipped).

  The result is cached as JSON in `dataset.cache_dir` (the TFDS data dir of a catalog data set, the
  root of a folder data set) under `cache_key`, so it is counted once per data set and split.

  Returns:
    i64[C].
  """
  path = None
  if dataset.cache_dir:
    path = pathlib.Path(dataset.cache_dir) / f"segjax_class_counts_{cache_key}_{split}.json"
    if path.is_file():
      cached = json.loads(path.read_text())
      if cached["class_names"] == list(dataset.class_names):
        return np.asarray(cached["counts"], np.int64)
  counts = np.zeros(dataset.num_classes, np.int64)
  for index in tqdm(range(len(dataset.source)), desc=f"Counting class pixels of {split}"):
    labels = dataset.source[index]["semantic"].ravel()
    labels = labels[(labels != ignore_index) & (labels < dataset.num_classes)]
    counts += np.bincount(labels, minlength=dataset.num_classes)
  if path is not None:
    record = {"class_names": list(dataset.class_names), "counts": counts.tolist()}
    path.write_text(json.dumps(record, indent=1))
  return counts


def train_class_counts(data_config, dataset: Dataset | None = None) -> tuple[Dataset, np.ndarray]:
  """The train split (opened unless given) and its class pixel counts, cached per data variant."""
  if dataset is None:
    from segjax.data import open_dataset  # here: segjax.data's package imports its modules

    dataset = open_dataset(data_config, data_config.train_split)
  counts = class_pixel_counts(
    dataset,
    split=data_config.train_split,
    ignore_index=data_config.ignore_index,
    cache_key=f"{data_config.name}_{data_config.variant}",
  )
  return dataset, counts

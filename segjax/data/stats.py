"""Per-class pixel counts and image sizes of a split, counted once and cached beside the data."""

import collections
import json
import pathlib
import re

import numpy as np
from tqdm import tqdm

from segjax.data.dataset import Dataset


def split_statistics(
  dataset: Dataset, *, split: str, ignore_index: int, cache_key: str
) -> dict[str, np.ndarray]:
  """Pixels of each class (void skipped) and the image sizes over every example of a split.

  The result is cached as JSON in `dataset.cache_dir` (the TFDS data dir of a catalog or prepared
  data set, the root of one read from its files) under `cache_key`, so it is counted once per data
  set and split.

  Returns:
    `counts: i64[C]`; `sizes: i64[S,3]`, rows (height, width, number of images), most frequent
    size first.
  """
  path = None
  if dataset.cache_dir:
    # tfds:NAME data sets and TFDS split slices carry "/", ":" or "%": keep file names plain.
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{cache_key}_{split}")
    path = pathlib.Path(dataset.cache_dir) / f"segjax_class_counts_{name}.json"
    if path.is_file():
      cached = json.loads(path.read_text())
      if cached["class_names"] == list(dataset.class_names) and "sizes" in cached:
        return {
          "counts": np.asarray(cached["counts"], np.int64),
          "sizes": np.asarray(cached["sizes"], np.int64).reshape(-1, 3),
        }
  counts = np.zeros(dataset.num_classes, np.int64)
  sizes = collections.Counter()
  for index in tqdm(range(len(dataset.source)), desc=f"Counting class pixels of {split}"):
    labels = dataset.source[index]["semantic"]
    sizes[labels.shape[:2]] += 1
    labels = labels.ravel()
    labels = labels[(labels != ignore_index) & (labels < dataset.num_classes)]
    counts += np.bincount(labels, minlength=dataset.num_classes)
  size_rows = [[h, w, n] for (h, w), n in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))]
  if path is not None:
    record = {
      "class_names": list(dataset.class_names),
      "counts": counts.tolist(),
      "sizes": size_rows,
    }
    path.write_text(json.dumps(record, indent=1))
  return {"counts": counts, "sizes": np.asarray(size_rows, np.int64).reshape(-1, 3)}


def train_statistics(
  data_config, dataset: Dataset | None = None
) -> tuple[Dataset, dict[str, np.ndarray]]:
  """The train split (opened unless given) and its `split_statistics`, cached per data variant."""
  if dataset is None:
    from segjax.data import open_dataset  # here: segjax.data's package imports its modules

    dataset = open_dataset(data_config, data_config.train_split)
  stats = split_statistics(
    dataset,
    split=data_config.train_split,
    ignore_index=data_config.ignore_index,
    cache_key=f"{data_config.name}_{data_config.variant}",
  )
  return dataset, stats


def train_class_counts(data_config, dataset: Dataset | None = None) -> tuple[Dataset, np.ndarray]:
  """The train split (opened unless given) and its class pixel counts `i64[C]`."""
  dataset, stats = train_statistics(data_config, dataset)
  return dataset, stats["counts"]

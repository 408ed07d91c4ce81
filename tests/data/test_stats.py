"""`segjax stats`: class pixel counts and image sizes of a train split, counted once."""

import json
import pathlib
import re

import numpy as np
from PIL import Image

from segjax.config import base_config
from segjax.data import open_dataset
from segjax.data.stats import split_statistics

REPO = pathlib.Path(__file__).resolve().parents[2]


def _write_folder(root: pathlib.Path) -> pathlib.Path:
  """Two 6x8 images and one 10x4, labels: class 1 on the first row, 255 on the last, 0 elsewhere."""
  (root / "train/images").mkdir(parents=True)
  (root / "train/masks").mkdir()
  (root / "classes.json").write_text(json.dumps(["background", "cat"]))
  for name, (h, w) in (("a", (6, 8)), ("b", (10, 4)), ("c", (6, 8))):
    labels = np.zeros((h, w), np.uint8)
    labels[0], labels[-1] = 1, 255
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(root / f"train/images/{name}.png")
    Image.fromarray(labels).save(root / f"train/masks/{name}.png")
  return root


def test_counts_and_sizes_by_hand_and_from_the_cache(tmp_path):
  config = base_config()
  config.data.name, config.data.root = "folder", str(_write_folder(tmp_path / "data"))
  dataset = open_dataset(config.data, "train")
  stats = split_statistics(dataset, split="train", ignore_index=255, cache_key="folder_x")
  # cat: 8 + 4 + 8 pixels on first rows; background: 6x8 and 10x4 minus two rows each.
  np.testing.assert_array_equal(stats["counts"], [32 + 32 + 32, 20])
  np.testing.assert_array_equal(stats["sizes"], [[6, 8, 2], [10, 4, 1]])
  cached = split_statistics(dataset, split="train[:2]", ignore_index=255, cache_key="tfds:a/b")
  assert list((tmp_path / "data").glob("segjax_class_counts_tfds_a_b_train__2_.json"))
  np.testing.assert_array_equal(cached["sizes"], stats["sizes"])


def test_cli_prints_the_sizes(cli, tmp_path):
  root = _write_folder(tmp_path / "data")
  out = cli(
    "stats",
    f"--config={REPO}/experiments/unet_shapes.py:tiny",
    "--config.data.name=folder",
    f"--config.data.root={root}",
  ).stdout
  assert "3 images, 2 distinct sizes" in out
  assert "height 6-10 (median 6), width 4-8 (median 8)" in out
  assert re.search(r"^ +6 x 8 +2 images\n +10 x 4 +1 images$", out, re.MULTILINE)

"""The `folder` data set: a user's images and masks, and one clear error per kind of bad file."""

import json

import numpy as np
import pytest
from PIL import Image

from segjax.config import base_config
from segjax.data import DATASETS
from segjax.data.builders.folder import FolderError


def _write(root, split="train", n=3, size=(12, 10)):
  (root / split / "images").mkdir(parents=True)
  (root / split / "masks").mkdir(parents=True)
  (root / "classes.json").write_text(json.dumps(["background", "cat", "dog"]))
  rng = np.random.default_rng(0)
  for i in range(n):
    image = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
    mask = rng.choice(np.array([0, 1, 2, 255], np.uint8), size)
    Image.fromarray(image).save(root / split / "images" / f"im{i}.jpg")
    Image.fromarray(mask).save(root / split / "masks" / f"im{i}.png")
  return root


def _open(root, split="train"):
  config = base_config()
  config.data.name, config.data.root = "folder", str(root)
  return DATASETS["folder"](config.data, split)


def test_reads_images_masks_and_class_names(tmp_path):
  dataset = _open(_write(tmp_path))
  assert dataset.class_names == ("background", "cat", "dog")
  assert len(dataset.source) == 3
  example = dataset.source[1]
  assert example["image"].shape == (12, 10, 3) and example["image"].dtype == np.uint8
  expected = np.asarray(Image.open(tmp_path / "train/masks/im1.png"))
  np.testing.assert_array_equal(example["semantic"], expected)


def test_missing_mask_names_the_image_and_the_expected_mask(tmp_path):
  root = _write(tmp_path)
  (root / "train/masks/im2.png").unlink()
  with pytest.raises(FolderError, match=r"im2\.jpg has no mask: expected .*masks/im2\.png"):
    _open(root)


def test_size_mismatch_names_both_files(tmp_path):
  root = _write(tmp_path)
  Image.fromarray(np.zeros((5, 5), np.uint8)).save(root / "train/masks/im0.png")
  with pytest.raises(FolderError, match=r"im0\.png is 5x5 but .*im0\.jpg is 10x12"):
    _open(root)


def test_label_that_is_neither_class_nor_ignore(tmp_path):
  root = _write(tmp_path)
  mask = np.zeros((12, 10), np.uint8)
  mask[0, 0] = 7
  Image.fromarray(mask).save(root / "train/masks/im1.png")
  with pytest.raises(FolderError, match=r"im1\.png has label values \[7\].*ignore_index=255"):
    _open(root)


def test_unreadable_image(tmp_path):
  root = _write(tmp_path)
  (root / "train/images/im0.jpg").write_bytes(b"not a jpeg")
  with pytest.raises(FolderError, match=r"im0\.jpg cannot be read as an image"):
    _open(root)


def test_colour_mask_is_rejected_with_the_fix(tmp_path):
  root = _write(tmp_path)
  Image.fromarray(np.zeros((12, 10, 3), np.uint8)).save(root / "train/masks/im0.png")
  with pytest.raises(FolderError, match=r"im0\.png has mode RGB.*single-channel"):
    _open(root)


def test_missing_classes_json_and_missing_split(tmp_path):
  root = _write(tmp_path)
  with pytest.raises(FolderError, match=r"validation is missing.*\['train'\]"):
    _open(root, "validation")
  (root / "classes.json").unlink()
  with pytest.raises(FolderError, match=r"classes\.json is missing"):
    _open(root)

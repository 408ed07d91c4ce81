"""ADE20K (SceneParse150) from the official layout: values 1..150 to classes 0..149, 0 to void."""

import numpy as np
import pytest
from fake_ade20k import write_ade20k
from PIL import Image

from segjax.config import base_config
from segjax.data.builders import ade20k
from segjax.data.builders.ade20k import Ade20kError

# Class id -> (name, colour), written out from mmsegmentation's mmseg/datasets/ade.py.
EXPECTED = {
  0: ("wall", (120, 120, 120)),
  1: ("building", (180, 120, 120)),
  2: ("sky", (6, 230, 230)),
  7: ("bed", (204, 5, 255)),  # "bed " there, with a trailing space
  12: ("person", (150, 5, 61)),
  20: ("car", (0, 102, 200)),
  148: ("clock", (102, 255, 0)),
  149: ("flag", (92, 0, 255)),
}


def _load(root, split="train", **data):
  config = base_config()
  config.data.root = str(root)
  config.data.update(data)
  return ade20k.load(config.data, split)


def test_values_shift_down_by_one_and_zero_becomes_void(tmp_path):
  dataset = _load(write_ade20k(tmp_path))
  assert len(dataset.source) == 2
  example = dataset.source[0]
  assert example["image"].shape == (6, 8, 3) and example["image"].dtype == np.uint8
  semantic = example["semantic"]
  assert semantic.shape == (6, 8) and semantic.dtype == np.uint8
  # Annotation values 0, 1, 2, 3, 13, 149, 150, 151.
  np.testing.assert_array_equal(semantic[0], [255, 0, 1, 2, 12, 148, 149, 255])
  # The other rows hold 1..40 in raster order: classes 0..39.
  np.testing.assert_array_equal(semantic[1:].ravel(), (np.arange(8, 48) % 40))
  assert dataset.source.image_file(1).name == "ADE_train_00000002.jpg"
  assert dataset.source.example_name(0).endswith("ADE_train_00000001.jpg")


def test_class_names_and_colours_are_mmsegmentations(tmp_path):
  dataset = _load(write_ade20k(tmp_path))
  assert dataset.num_classes == 150 and len(dataset.colors) == 150
  assert len(set(dataset.class_names)) == 150
  assert all(name == name.strip() for name in dataset.class_names)
  for class_id, (name, color) in EXPECTED.items():
    assert (dataset.class_names[class_id], dataset.colors[class_id]) == (name, color)
  assert dataset.things == () and dataset.stuff == ()
  assert dataset.cache_dir == str(tmp_path)


def test_both_splits_read_their_folders(tmp_path):
  assert ade20k.SPLITS == {"train": "training", "validation": "validation"}
  write_ade20k(tmp_path, "training", count=3)
  write_ade20k(tmp_path, "validation", count=1)
  assert len(_load(tmp_path, "train").source) == 3
  validation = _load(tmp_path, "validation").source
  assert len(validation) == 1 and validation.image_file(0).name == "ADE_val_00000001.jpg"
  with pytest.raises(Ade20kError, match=r"split 'test'"):
    _load(tmp_path, "test")


def test_root_may_be_the_inner_folder(tmp_path):
  write_ade20k(tmp_path)
  dataset = _load(tmp_path / "ADEChallengeData2016")
  assert len(dataset.source) == 2
  assert dataset.source[1]["semantic"][0, 1] == 0


def test_missing_zip_and_annotation_are_named(tmp_path):
  with pytest.raises(
    Ade20kError,
    match=r"no ADEChallengeData2016/ folder: download "
    r"ADEChallengeData2016\.zip .*sceneparsing\.csail\.mit\.edu",
  ):
    _load(tmp_path)
  root = write_ade20k(tmp_path / "data")
  (root / "ADEChallengeData2016/annotations/training/ADE_train_00000002.png").unlink()
  with pytest.raises(
    Ade20kError,
    match=r"has no annotation ADE_train_00000002\.png .*unpack "
    r"ADEChallengeData2016\.zip again",
  ):
    _load(root)


def test_bad_annotations_and_ignore_index_are_refused(tmp_path):
  root = write_ade20k(tmp_path)
  with pytest.raises(Ade20kError, match=r"ignore_index=0"):
    _load(root, ignore_index=0)
  labels = root / "ADEChallengeData2016/annotations/training"
  Image.new("RGB", (8, 6)).save(labels / "ADE_train_00000001.png")
  Image.new("L", (7, 6)).save(labels / "ADE_train_00000002.png")
  source = _load(root).source
  with pytest.raises(Ade20kError, match=r"ADE_train_00000001\.png is a RGB image, not a single"):
    source[0]
  with pytest.raises(
    Ade20kError,
    match=r"ADE_train_00000002\.jpg is 8x6 but its annotation "
    r".*ADE_train_00000002\.png is 7x6",
  ):
    source[1]

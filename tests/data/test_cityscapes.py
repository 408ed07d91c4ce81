"""Cityscapes from the official layout: label ids to train ids, instance ids to panoptic ids."""

import numpy as np
import pytest
from fake_cityscapes import write_cityscapes
from user_datasets import open_dataset

from segjax.data.builders.cityscapes import CityscapesError

# Label id -> train id, written out from the Cityscapes label table (not from the code's table).
EXPECTED_TRAIN_ID = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
                     24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}  # fmt: skip


def _open(root, split="train"):
  return open_dataset("cityscapes", root, split)


def test_label_ids_become_the_19_train_ids_and_the_rest_void(tmp_path):
  dataset = _open(write_cityscapes(tmp_path))
  assert len(dataset.class_names) == 19 and dataset.class_names[:3] == (
    "road",
    "sidewalk",
    "building",
  )
  assert dataset.things == tuple(range(11, 19)) and dataset.stuff == tuple(range(11))
  assert len(dataset.source) == 2
  example = dataset.source[0]
  label_ids = (np.arange(48) % 34).reshape(6, 8)
  expected = np.vectorize(lambda i: EXPECTED_TRAIN_ID.get(int(i), 255))(label_ids)
  np.testing.assert_array_equal(example["semantic"], expected)
  assert example["image"].shape == (6, 8, 3)


def test_instances_become_panoptic_ids_and_crowds_instance_0(tmp_path):
  example = _open(write_cityscapes(tmp_path)).source[1]
  label_ids = (np.arange(48) % 34).reshape(6, 8)
  panoptic = example["panoptic"]
  assert (panoptic[label_ids == 26] == 13 * 1000 + 1).all()  # car, instance 1
  assert (panoptic[label_ids == 24] == 11 * 1000).all()  # person crowd: no instance
  assert (panoptic[label_ids == 7] == 0).all()  # road, stuff
  assert (panoptic[label_ids == 4] == 255_000).all()  # static: void


def test_validation_reads_val(tmp_path):
  write_cityscapes(tmp_path, split="val", cities=("frankfurt",))
  assert len(_open(tmp_path, "validation").source) == 1


def test_missing_folders_and_files_name_the_zip_to_unpack(tmp_path):
  with pytest.raises(
    CityscapesError, match=r"leftImg8bit/train is missing: download leftImg8bit_trainvaltest\.zip"
  ):
    _open(tmp_path)
  root = write_cityscapes(tmp_path)
  next((root / "gtFine/train/aachen").glob("*_instanceIds.png")).unlink()
  with pytest.raises(CityscapesError, match=r"has no aachen_000000_000019_gtFine_instanceIds\.png"):
    _open(root)

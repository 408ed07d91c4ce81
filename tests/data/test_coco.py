"""The `coco` data set: a COCO-format instances file decoded into semantic and panoptic maps."""

import numpy as np
import pytest
from fake_coco import write_coco
from user_datasets import open_dataset

from segjax.data.builders.coco import CocoError


def _open(root, split="validation"):
  return open_dataset("coco", root, split)


def test_instances_become_semantic_and_panoptic_maps(tmp_path):
  dataset = _open(write_coco(tmp_path))
  assert dataset.class_names == ("background", "car", "dog")
  assert dataset.things == (1, 2) and dataset.stuff == (0,)
  assert len(dataset.source) == 2
  example = dataset.source[0]
  car = np.zeros((20, 30), bool)
  car[4:12, 2:10] = True  # polygon rasterised by pycocotools: rows 4-11, cols 2-9
  expected_semantic = np.zeros((20, 30), np.uint8)
  expected_semantic[car] = 1
  expected_semantic[2:6, 20:28] = 2
  expected_semantic[15:20, 0:5] = 255  # crowd: void
  np.testing.assert_array_equal(example["semantic"], expected_semantic)
  assert set(np.unique(example["panoptic"]).tolist()) == {0, 1001, 2002, 255000}
  np.testing.assert_array_equal(example["panoptic"] == 1001, car)
  # An image without annotations is all background.
  assert not dataset.source[1]["semantic"].any()


def test_missing_files_are_named(tmp_path):
  with pytest.raises(CocoError, match=r"instances_val2017.json is missing"):
    _open(tmp_path)
  with pytest.raises(CocoError, match=r"splits \['train', 'validation'\]"):
    _open(write_coco(tmp_path), split="test")
  (tmp_path / "val2017/a.jpg").unlink()
  with pytest.raises(CocoError, match=r"a.jpg cannot be read"):
    _open(tmp_path).source[0]

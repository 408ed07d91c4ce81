"""The `coco` data set: a COCO-format instances file decoded into semantic and panoptic maps."""

import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from user_datasets import open_dataset

from segjax.data.builders.coco import CocoError


def _write_coco(root, split_dir="val2017"):
  (root / "annotations").mkdir(parents=True)
  (root / split_dir).mkdir()
  Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(root / split_dir / "a.jpg")
  Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(root / split_dir / "b.jpg")
  crowd = np.zeros((20, 30), np.uint8)
  crowd[15:20, 0:5] = 1
  rle = mask_utils.encode(np.asfortranarray(crowd))
  rle["counts"] = rle["counts"].decode()
  dog = np.zeros((20, 30), np.uint8)
  dog[2:6, 20:28] = 1
  dog_rle = mask_utils.encode(np.asfortranarray(dog))
  dog_rle["counts"] = dog_rle["counts"].decode()
  annotations = {
    "images": [
      {"id": 7, "file_name": "a.jpg", "height": 20, "width": 30},
      {"id": 9, "file_name": "b.jpg", "height": 10, "width": 10},
    ],
    # Category ids need not be contiguous: 18 (dog) and 3 (car) become classes 2 and 1.
    "categories": [{"id": 18, "name": "dog"}, {"id": 3, "name": "car"}],
    "annotations": [
      # A polygon: the rectangle with corners (2, 4) and (10, 12), pixel edges.
      {
        "id": 1,
        "image_id": 7,
        "category_id": 3,
        "iscrowd": 0,
        "area": 64,
        "bbox": [2, 4, 8, 8],
        "segmentation": [[2, 4, 10, 4, 10, 12, 2, 12]],
      },
      {
        "id": 2,
        "image_id": 7,
        "category_id": 18,
        "iscrowd": 0,
        "area": 32,
        "bbox": [20, 2, 8, 4],
        "segmentation": dog_rle,
      },
      {
        "id": 3,
        "image_id": 7,
        "category_id": 3,
        "iscrowd": 1,
        "area": 25,
        "bbox": [0, 15, 5, 5],
        "segmentation": rle,
      },
    ],
  }
  (root / "annotations/instances_val2017.json").write_text(json.dumps(annotations))
  return root


def _open(root, split="validation"):
  return open_dataset("coco", root, split)


def test_instances_become_semantic_and_panoptic_maps(tmp_path):
  dataset = _open(_write_coco(tmp_path))
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
    _open(_write_coco(tmp_path), split="test")
  (tmp_path / "val2017/a.jpg").unlink()
  with pytest.raises(CocoError, match=r"a.jpg cannot be read"):
    _open(tmp_path).source[0]

"""Tiny copies of the official COCO 2017 layouts, instances (annotations/instances_*.json) and
panoptic (annotations/panoptic_*.json and their PNG folders), next to the image folders
train2017/ and val2017/, made by the tests themselves."""

import json
import pathlib

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from segjax.data.coco_panoptic import id_to_rgb

# The panoptic categories written: segjax classes 0..3 in this order; person and car are things.
PANOPTIC_CATEGORIES = [
  {"id": 7, "name": "sky", "isthing": 0},
  {"id": 1, "name": "person", "isthing": 1},
  {"id": 150, "name": "grass", "isthing": 0},
  {"id": 3, "name": "car", "isthing": 1},
]


def _rle(mask: np.ndarray) -> dict:
  rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
  rle["counts"] = rle["counts"].decode()
  return rle


def write_coco(root: pathlib.Path, split_dir: str = "val2017") -> pathlib.Path:
  """COCO instances of one split (`split_dir`: "train2017" or "val2017"; call once per split):
  image a.jpg (id 7, 20x30, black) with a car polygon (the rectangle with pixel-edge corners
  (x, y) = (2, 4) and (10, 12)), a dog RLE (rows 2-5, columns 20-27) and a crowd of cars RLE
  (rows 15-19, columns 0-4); image b.jpg (id 9, 10x10, black) without annotations. Category ids
  are not contiguous: 18 (dog) and 3 (car) become classes 2 and 1. Returns `root`."""
  (root / "annotations").mkdir(parents=True, exist_ok=True)
  (root / split_dir).mkdir()
  Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(root / split_dir / "a.jpg")
  Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(root / split_dir / "b.jpg")
  crowd = np.zeros((20, 30), np.uint8)
  crowd[15:20, 0:5] = 1
  dog = np.zeros((20, 30), np.uint8)
  dog[2:6, 20:28] = 1
  annotations = {
    "images": [
      {"id": 7, "file_name": "a.jpg", "height": 20, "width": 30},
      {"id": 9, "file_name": "b.jpg", "height": 10, "width": 10},
    ],
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
        "segmentation": _rle(dog),
      },
      {
        "id": 3,
        "image_id": 7,
        "category_id": 3,
        "iscrowd": 1,
        "area": 25,
        "bbox": [0, 15, 5, 5],
        "segmentation": _rle(crowd),
      },
    ],
  }
  (root / f"annotations/instances_{split_dir}.json").write_text(json.dumps(annotations))
  return root


def write_coco_panoptic(root: pathlib.Path, split_dir: str = "val2017") -> pathlib.Path:
  """COCO panoptic of one split (`split_dir`: "train2017" or "val2017"; call once per split),
  categories `PANOPTIC_CATEGORIES`. Two images: a (id 4, 6x8, grey 50) with sky (rows 0-1), grass
  (rows 4-5), two people (rows 2-3, columns 0-1 and 2-3), a crowd of cars (columns 4-5) and
  unlabelled pixels (columns 6-7); b (id 9, 4x4, grey 60) all sky. Segment ids are arbitrary, as
  in COCO's files, and the JSON lists b first. Returns `root`."""
  png_dir = root / "annotations" / f"panoptic_{split_dir}"
  png_dir.mkdir(parents=True)
  (root / split_dir).mkdir()
  ids_a = np.zeros((6, 8), np.int64)
  ids_a[0:2] = 5000  # sky
  ids_a[4:6] = 70  # grass
  ids_a[2:4, 0:2] = 300  # person 1
  ids_a[2:4, 2:4] = 90_000  # person 2
  ids_a[2:4, 4:6] = 12  # crowd of cars
  # ids_a[2:4, 6:8] stays 0: unlabelled
  Image.fromarray(id_to_rgb(ids_a)).save(png_dir / "a.png")
  Image.fromarray(id_to_rgb(np.full((4, 4), 9))).save(png_dir / "b.png")
  Image.fromarray(np.full((6, 8, 3), 50, np.uint8)).save(root / split_dir / "a.jpg")
  Image.fromarray(np.full((4, 4, 3), 60, np.uint8)).save(root / split_dir / "b.jpg")
  annotations = {
    "images": [{"id": 9, "file_name": "b.jpg"}, {"id": 4, "file_name": "a.jpg"}],
    "categories": PANOPTIC_CATEGORIES,
    "annotations": [
      {"image_id": 9, "file_name": "b.png", "segments_info": [{"id": 9, "category_id": 7}]},
      {
        "image_id": 4,
        "file_name": "a.png",
        "segments_info": [
          {"id": 5000, "category_id": 7, "iscrowd": 0},
          {"id": 90_000, "category_id": 1, "iscrowd": 0},
          {"id": 12, "category_id": 3, "iscrowd": 1},
          {"id": 300, "category_id": 1, "iscrowd": 0},
          {"id": 70, "category_id": 150, "iscrowd": 0},
        ],
      },
    ],
  }
  (root / "annotations" / f"panoptic_{split_dir}.json").write_text(json.dumps(annotations))
  return root

"""The COCO panoptic format (segment-id PNGs plus a JSON) and the `coco_panoptic` builder."""

import json

import numpy as np
import pytest
from fake_coco import PANOPTIC_CATEGORIES, write_coco_panoptic
from PIL import Image

from segjax.config import base_config
from segjax.data.builders import coco_panoptic as builder
from segjax.data.builders.coco import CocoError
from segjax.data.coco_panoptic import (
  from_coco_panoptic,
  id_to_rgb,
  read_predictions,
  rgb_to_id,
  to_coco_panoptic,
  write_predictions,
)

VOID = 255_000
# segjax classes 0..3 -> COCO categories; 1 and 3 are things.
CATEGORIES = PANOPTIC_CATEGORIES
CATEGORY_IDS = [c["id"] for c in CATEGORIES]
CLASS_OF = {c["id"]: i for i, c in enumerate(CATEGORIES)}
THINGS = (1, 3)


def _random_panoptic(seed: int, shape=(24, 32)) -> np.ndarray:
  """Blocks of stuff (instance 0), void and things, each thing class's instances 1..n."""
  rng = np.random.default_rng(seed)
  blocks = rng.integers(0, 8, (shape[0] // 4, shape[1] // 4))
  choices = np.array([0, 2000, VOID, 1001, 1002, 3001, 3002, 3003])
  panoptic = np.kron(choices[blocks], np.ones((4, 4), np.int64))
  for cls in THINGS:
    ids = np.unique(panoptic[panoptic // 1000 == cls])
    for instance, value in enumerate(ids, start=1):
      panoptic[panoptic == value] = cls * 1000 + instance
  return panoptic.astype(np.int32)


def _encode(panoptic):
  return to_coco_panoptic(panoptic, category_ids=CATEGORY_IDS, things=THINGS)


def _decode(rgb, segments_info):
  return from_coco_panoptic(rgb, segments_info, class_of_category=CLASS_OF, things=THINGS)


def test_segment_ids_and_colours_match_by_hand():
  ids = np.array([[0, 1, 256], [65536 + 2, 255, 2**24 - 1]])
  rgb = id_to_rgb(ids)
  expected = [[[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[2, 0, 1], [255, 0, 0], [255, 255, 255]]]
  np.testing.assert_array_equal(rgb, expected)
  assert rgb.dtype == np.uint8
  np.testing.assert_array_equal(rgb_to_id(rgb), ids)
  with pytest.raises(ValueError, match="2\\*\\*24"):
    id_to_rgb(np.array([2**24]))


@pytest.mark.parametrize("seed", range(5))
def test_round_trip_is_exact_for_instances_numbered_from_one(seed):
  panoptic = _random_panoptic(seed)
  np.testing.assert_array_equal(_decode(*_encode(panoptic)), panoptic)


def test_round_trip_renumbers_instances_and_merges_stuff():
  panoptic = np.array([[1005, 1005, 1009], [2, 2, 2003], [400_000, VOID, 3001]], np.int32)
  decoded = _decode(*_encode(panoptic))
  # Instances 5 and 9 become 1 and 2 (id order); stuff loses its instance; class 400 is void.
  np.testing.assert_array_equal(decoded, [[1001, 1001, 1002], [0, 0, 2000], [VOID, VOID, 3001]])


def test_segments_info_has_the_pixels_boxes_and_areas():
  panoptic = _random_panoptic(3)
  rgb, segments_info = _encode(panoptic)
  json.dumps(segments_info)  # Python ints only
  ids = rgb_to_id(rgb)
  np.testing.assert_array_equal(ids == 0, panoptic == VOID)
  assert [s["id"] for s in segments_info] == list(range(1, len(segments_info) + 1))
  stuff = np.where(np.isin(panoptic // 1000, THINGS), panoptic, panoptic // 1000 * 1000)
  for segment in segments_info:
    mask = ids == segment["id"]
    (value,) = np.unique(stuff[mask]).tolist()  # one segjax id per segment
    assert segment["category_id"] == CATEGORY_IDS[value // 1000]
    assert segment["iscrowd"] == 0
    rows, cols = np.nonzero(mask)
    x, y = cols.min(), rows.min()
    assert segment["bbox"] == [x, y, cols.max() - x + 1, rows.max() - y + 1]
    assert segment["area"] == mask.sum()


def test_crowd_unlisted_and_zero_segments_are_void():
  ids = np.array([[0, 1, 2, 3, 4]])
  segments_info = [
    {"id": 1, "category_id": 3, "iscrowd": 0},
    {"id": 2, "category_id": 3, "iscrowd": 1},
    {"id": 3, "category_id": 3},
    {"id": 0, "category_id": 7},
  ]
  decoded = _decode(id_to_rgb(ids), segments_info)
  np.testing.assert_array_equal(decoded, [[VOID, 3001, VOID, 3002, VOID]])


def test_written_predictions_read_back_losslessly(tmp_path):
  maps = {"a": _random_panoptic(0), 17: _random_panoptic(1, shape=(8, 12))}
  json_path = write_predictions(tmp_path, maps.items(), categories=CATEGORIES)
  assert json_path == tmp_path / "panoptic.json"
  data = json.loads(json_path.read_text())
  assert data["categories"] == CATEGORIES
  read = read_predictions(json_path)
  assert set(read) == {"a", 17}
  for image_id, panoptic in maps.items():
    png, segments_info = read[image_id]
    assert png == tmp_path / "panoptic" / f"{image_id}.png"
    rgb = np.asarray(Image.open(png))
    expected_rgb, expected_info = _encode(panoptic)
    np.testing.assert_array_equal(rgb, expected_rgb)
    assert segments_info == expected_info
    np.testing.assert_array_equal(_decode(rgb, segments_info), panoptic)


def test_duplicate_predictions_are_refused(tmp_path):
  maps = [("a", _random_panoptic(0)), ("a", _random_panoptic(1))]
  with pytest.raises(ValueError, match="Two predictions for image 'a'"):
    write_predictions(tmp_path, maps, categories=CATEGORIES)


def test_panopticapi_reads_the_same_ids():
  utils = pytest.importorskip("panopticapi.utils")
  rgb, _ = _encode(_random_panoptic(2))
  np.testing.assert_array_equal(utils.rgb2id(rgb), rgb_to_id(rgb))


def _open(root, split="validation"):
  config = base_config()
  config.data.root = str(root)
  return builder.load(config.data, split)


def test_builder_decodes_semantic_and_panoptic_maps(tmp_path):
  dataset = _open(write_coco_panoptic(tmp_path))
  # Categories sorted by id: person (1), car (3), sky (7), grass (150).
  assert dataset.class_names == ("person", "car", "sky", "grass")
  assert dataset.things == (0, 1) and dataset.stuff == (2, 3)
  assert dataset.cache_dir == str(tmp_path)
  assert len(dataset.source) == 2
  example = dataset.source[0]  # image 4, the first by id
  np.testing.assert_array_equal(example["image"], np.full((6, 8, 3), 50))
  expected = np.full((6, 8), VOID, np.int32)
  expected[0:2] = 2000
  expected[4:6] = 3000
  expected[2:4, 2:4] = 1  # the first person listed
  expected[2:4, 0:2] = 2
  np.testing.assert_array_equal(example["panoptic"], expected)
  assert example["panoptic"].dtype == np.int32
  np.testing.assert_array_equal(example["semantic"], expected // 1000)
  assert example["semantic"].dtype == np.uint8
  other = dataset.source[1]
  np.testing.assert_array_equal(other["panoptic"], np.full((4, 4), 2000))


def test_builder_names_missing_and_bad_files(tmp_path):
  with pytest.raises(CocoError, match=r"config.data.root\) is not a folder"):
    _open(tmp_path / "nowhere")
  with pytest.raises(CocoError, match=r"panoptic_val2017.json is missing"):
    _open(tmp_path)
  root = write_coco_panoptic(tmp_path)
  with pytest.raises(CocoError, match=r"splits \['train', 'validation'\]"):
    _open(root, split="test")
  (root / "val2017/a.jpg").unlink()
  with pytest.raises(CocoError, match=r"a.jpg cannot be read"):
    _open(root).source[0]
  Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(root / "val2017/b.jpg")
  with pytest.raises(CocoError, match=r"b.png is 4x4 but .*b.jpg is 5x5"):
    _open(root).source[1]
  Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root / "val2017/b.jpg")
  json_path = root / "annotations/panoptic_val2017.json"
  data = json.loads(json_path.read_text())
  data["annotations"][0]["segments_info"][0]["category_id"] = 99
  json_path.write_text(json.dumps(data))
  with pytest.raises(CocoError, match=r"segments of b.png .* category .*KeyError\(99\)"):
    _open(root).source[1]
  for png in (root / "annotations/panoptic_val2017").iterdir():
    png.unlink()
  (root / "annotations/panoptic_val2017").rmdir()
  with pytest.raises(CocoError, match=r"panoptic_val2017 is not a folder: unzip"):
    _open(root)

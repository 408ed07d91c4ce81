"""The COCO panoptic format (what panopticapi reads and `pq_compute` scores).

Per image, a PNG whose colours are segment ids (`id = R + 256 G + 256² B`, 0 for void) and, in
one JSON, its `segments_info`: each segment's `id`, `category_id`, `iscrowd`, `bbox` (x, y, w, h
pixels) and `area`. segjax's panoptic maps are `class * label_divisor + instance` with contiguous
class ids, instance 0 for stuff and `ignore_index * label_divisor` for void.
"""

import collections
import json
import pathlib
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from PIL import Image
from scipy import ndimage

LABEL_DIVISOR = 1000
IGNORE_INDEX = 255


def rgb_to_id(rgb: np.ndarray) -> np.ndarray:
  """Segment ids of a COCO panoptic PNG: `rgb: u8[H,W,3]` -> i32[H,W]."""
  rgb = np.asarray(rgb, np.int32)
  return rgb[..., 0] + 256 * rgb[..., 1] + 256**2 * rgb[..., 2]


def id_to_rgb(ids: np.ndarray) -> np.ndarray:
  """The inverse of `rgb_to_id`: `ids: int[H,W]`, each in [0, 2**24) -> u8[H,W,3]."""
  ids = np.asarray(ids, np.int64)
  if ids.size and (ids.min() < 0 or ids.max() >= 256**3):
    raise ValueError(f"Segment ids must lie in [0, 2**24); got {ids.min()}..{ids.max()}.")
  return np.stack([ids % 256, ids // 256 % 256, ids // 256**2], axis=-1).astype(np.uint8)


def to_coco_panoptic(
  panoptic: np.ndarray,
  *,
  category_ids: Sequence[int],
  things: Iterable[int],
  label_divisor: int = LABEL_DIVISOR,
  ignore_index: int = IGNORE_INDEX,
) -> tuple[np.ndarray, list[dict]]:
  """segjax's panoptic map -> a COCO panoptic PNG's colours and its `segments_info`.

  Each distinct id is one segment, numbered 1, 2, ... in id order; all pixels of a stuff class
  are one segment whatever their instance. Pixels of class `ignore_index` or of a class with no
  entry in `category_ids` are void (segment id 0).

  Args:
    panoptic: int[H,W] `class * label_divisor + instance`.
    category_ids: the COCO category id of each segjax class.
    things: the thing classes.

  Returns:
    (u8[H,W,3] segment ids as `id_to_rgb` encodes them, one `{"id", "category_id", "iscrowd",
    "bbox", "area"}` of Python ints per segment).
  """
  panoptic = np.asarray(panoptic, np.int64)
  classes = panoptic // label_divisor
  void = (classes < 0) | (classes >= len(category_ids)) | (classes == ignore_index)
  stuff = ~np.isin(classes, list(things))
  keys = np.where(void, -1, np.where(stuff, classes * label_divisor, panoptic))
  unique, inverse = np.unique(keys, return_inverse=True)
  has_void = int(void.any())
  # Void (-1) is the smallest key, so it is index 0 when present and the segments are 1..n.
  segments = inverse.reshape(keys.shape) + 1 - has_void
  areas = np.bincount(segments.ravel())
  info = []
  boxes = ndimage.find_objects(segments)
  for number, (key, (rows, cols)) in enumerate(zip(unique[has_void:], boxes, strict=True), 1):
    info.append(
      {
        "id": number,
        "category_id": int(category_ids[key // label_divisor]),
        "iscrowd": 0,
        "bbox": [cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start],
        "area": int(areas[number]),
      }
    )
  return id_to_rgb(segments), info


def from_coco_panoptic(
  rgb: np.ndarray,
  segments_info: Sequence[Mapping],
  *,
  class_of_category: Mapping[int, int],
  things: Iterable[int],
  label_divisor: int = LABEL_DIVISOR,
  ignore_index: int = IGNORE_INDEX,
) -> np.ndarray:
  """A COCO panoptic PNG's colours and its `segments_info` -> segjax's panoptic map.

  Thing segments take instances 1, 2, ... per class in `segments_info` order, stuff segments
  instance 0. Crowd segments, id 0 and ids that `segments_info` does not list are void. Hence
  `from_coco_panoptic(*to_coco_panoptic(p))` is `p` where each thing class's instances are 1..n
  and stuff's 0; otherwise it is `p` up to a renumbering of each class's instances.

  Args:
    rgb: u8[H,W,3] segment ids as `id_to_rgb` encodes them.
    segments_info: `{"id", "category_id", "iscrowd"?}` per segment.
    class_of_category: the segjax class of each COCO category id.
    things: the thing classes.

  Returns:
    i32[H,W] `class * label_divisor + instance`.

  Raises:
    KeyError: a segment's category is not in `class_of_category`.
  """
  ids = rgb_to_id(rgb)
  unique, inverse = np.unique(ids, return_inverse=True)
  values = np.full(len(unique), ignore_index * label_divisor, np.int32)
  things = set(things)
  count = collections.Counter()
  for segment in segments_info:
    if segment.get("iscrowd", 0) or segment["id"] == 0:
      continue
    cls = class_of_category[segment["category_id"]]
    instance = 0
    if cls in things:
      count[cls] += 1
      instance = count[cls]
      if instance >= label_divisor:
        raise ValueError(f"Class {cls} has more than {label_divisor - 1} instances.")
    position = np.searchsorted(unique, segment["id"])
    if position < len(unique) and unique[position] == segment["id"]:
      values[position] = cls * label_divisor + instance
  return values[inverse.reshape(ids.shape)]


def write_predictions(
  out_dir: str | pathlib.Path,
  predictions: Iterable[tuple[str | int, np.ndarray]],
  *,
  categories: Sequence[Mapping],
  folder: str = "panoptic",
  label_divisor: int = LABEL_DIVISOR,
  ignore_index: int = IGNORE_INDEX,
) -> pathlib.Path:
  """Writes panoptic maps in the COCO panoptic format: `out_dir/<folder>/<image_id>.png` each and
  `out_dir/<folder>.json` (`annotations` and `categories`). Files of the same names are replaced,
  nothing else is touched.

  Args:
    out_dir: created if missing.
    predictions: `(image_id, panoptic: int[H,W])` pairs. `image_id` goes into the JSON as given
      (COCO's ground truth has int ids, which `pq_compute` matches) and names the PNG.
    categories: `{"id", "name", "isthing"}` per segjax class, in class order.

  Returns:
    The JSON's path.
  """
  png_dir = pathlib.Path(out_dir) / folder
  png_dir.mkdir(parents=True, exist_ok=True)
  category_ids = [c["id"] for c in categories]
  things = [i for i, c in enumerate(categories) if c["isthing"]]
  annotations = []
  seen = set()
  for image_id, panoptic in predictions:
    image_id = image_id if isinstance(image_id, str) else int(image_id)  # numpy ints: not JSON
    if image_id in seen:
      raise ValueError(f"Two predictions for image {image_id!r}.")
    seen.add(image_id)
    rgb, segments_info = to_coco_panoptic(
      panoptic,
      category_ids=category_ids,
      things=things,
      label_divisor=label_divisor,
      ignore_index=ignore_index,
    )
    file_name = f"{image_id}.png"
    Image.fromarray(rgb).save(png_dir / file_name)
    annotations.append(
      {"image_id": image_id, "file_name": file_name, "segments_info": segments_info}
    )
  json_path = pathlib.Path(out_dir) / f"{folder}.json"
  json_path.write_text(json.dumps({"annotations": annotations, "categories": list(categories)}))
  return json_path


def read_predictions(
  json_path: str | pathlib.Path, png_dir: str | pathlib.Path | None = None
) -> dict[str | int, tuple[pathlib.Path, list[dict]]]:
  """Reads a COCO panoptic JSON: image id -> (its PNG's path, its `segments_info`).

  The PNGs are looked for in `png_dir`, by default the JSON's path without `.json`.
  """
  json_path = pathlib.Path(json_path)
  png_dir = json_path.with_suffix("") if png_dir is None else pathlib.Path(png_dir)
  annotations = json.loads(json_path.read_text())["annotations"]
  return {a["image_id"]: (png_dir / a["file_name"], a["segments_info"]) for a in annotations}

"""COCO instances (`instances_train2017.json` + images) read from a user's download.

Layout (`config.data.root`), as the COCO site ships it:

    root/annotations/instances_train2017.json     instances_val2017.json
    root/train2017/*.jpg                          root/val2017/*.jpg

Split "train" reads train2017 and "validation" val2017. Classes are "background" (id 0, stuff)
and the 80 categories in category-id order (ids 1..80, things). Each example has `semantic`
(class ids; crowd regions void) and `panoptic` (class * 1000 + instance, 1-based in annotation
order; crowd regions void), decoded from the polygons and RLEs with pycocotools. Images without
annotations are kept (detectron2 drops them from training): they are all background.
"""

import contextlib
import io
import json
import pathlib

import numpy as np
from PIL import Image, UnidentifiedImageError

from segjax.data.dataset import Dataset
from segjax.errors import InputError

SPLITS = {"train": "train2017", "validation": "val2017"}
LABEL_DIVISOR = 1000


class CocoError(InputError):
  """A file of the user's COCO copy is missing or malformed."""


class CocoSource:
  """Random-access COCO examples of one split."""

  def __init__(self, annotations: pathlib.Path, images_dir: pathlib.Path, ignore_index: int):
    from pycocotools.coco import COCO

    if not annotations.is_file():
      raise CocoError(
        f"{annotations} is missing: download the COCO 2017 annotations and unpack them into "
        f"{annotations.parent.parent} (annotations/instances_*.json)."
      )
    if not images_dir.is_dir():
      raise CocoError(f"{images_dir} is not a folder: unpack the COCO images there.")
    try:
      with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        self._coco = COCO(str(annotations))
    except (json.JSONDecodeError, KeyError, TypeError) as error:
      raise CocoError(f"{annotations} is not a COCO instances file ({error}).") from error
    self._images_dir = images_dir
    self._ignore_index = ignore_index
    self._ids = sorted(self._coco.getImgIds())
    categories = sorted(self._coco.getCatIds())
    self.class_names = ("background", *(self._coco.cats[c]["name"] for c in categories))
    self._class_of = {c: i + 1 for i, c in enumerate(categories)}

  def __len__(self) -> int:
    return len(self._ids)

  def image_file(self, index: int) -> pathlib.Path:
    return self._images_dir / self._coco.imgs[self._ids[index]]["file_name"]

  def __getitem__(self, index: int) -> dict:
    info = self._coco.imgs[self._ids[index]]
    path = self.image_file(index)
    try:
      with Image.open(path) as file:
        image = np.asarray(file.convert("RGB"))
    except (FileNotFoundError, UnidentifiedImageError, OSError) as error:
      raise CocoError(f"{path} cannot be read as an image ({error}).") from error
    h, w = info["height"], info["width"]
    if image.shape[:2] != (h, w):
      raise CocoError(f"{path} is {image.shape[1]}x{image.shape[0]}, its annotation {w}x{h}.")
    semantic = np.zeros((h, w), np.uint8)
    panoptic = np.zeros((h, w), np.int32)
    void = np.zeros((h, w), bool)
    annotations = self._coco.loadAnns(self._coco.getAnnIds(imgIds=info["id"]))
    for number, annotation in enumerate(annotations, start=1):
      mask = self._coco.annToMask(annotation).astype(bool)
      if annotation.get("iscrowd", 0):
        void |= mask
        continue
      cls = self._class_of[annotation["category_id"]]
      semantic[mask] = cls
      panoptic[mask] = cls * LABEL_DIVISOR + number
    semantic[void] = self._ignore_index
    panoptic[void] = self._ignore_index * LABEL_DIVISOR
    return {"image": image, "semantic": semantic, "panoptic": panoptic}


def split_root(data_config, split: str) -> tuple[pathlib.Path, str]:
  """`(root, name)` of a COCO-layout download: the checked `config.data.root` and the split's
  folder name ("train2017" for "train", "val2017" for "validation")."""
  if not data_config.root:
    raise CocoError("config.data.root is empty: set it to the folder that holds annotations/.")
  if split not in SPLITS:
    raise CocoError(f"COCO has the splits {sorted(SPLITS)}; got {split!r}.")
  root = pathlib.Path(data_config.root).expanduser()
  if not root.is_dir():
    raise CocoError(
      f"{root} (config.data.root) is not a folder: set it to the folder that holds annotations/."
    )
  return root, SPLITS[split]


def load(data_config, split: str) -> Dataset:
  """Opens `data_config.root`'s COCO 2017 `split` ("train" or "validation")."""
  root, name = split_root(data_config, split)
  source = CocoSource(
    root / "annotations" / f"instances_{name}.json", root / name, data_config.ignore_index
  )
  classes = source.class_names
  return Dataset(
    source,
    class_names=classes,
    things=tuple(range(1, len(classes))),
    stuff=(0,),
    cache_dir=str(root),
  )

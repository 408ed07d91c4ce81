"""COCO panoptic (`panoptic_train2017.json`, its PNGs and the images) read from a user's download.

Layout (`config.data.root`), as the COCO site ships it, with the PNGs unzipped from
annotations/panoptic_train2017.zip and panoptic_val2017.zip:

    root/annotations/panoptic_train2017.json      panoptic_val2017.json
    root/annotations/panoptic_train2017/*.png     panoptic_val2017/*.png
    root/train2017/*.jpg                          root/val2017/*.jpg

Split "train" reads train2017 and "validation" val2017. Classes are the JSON's categories in
category-id order (ids 0..132 for COCO's 80 things and 53 stuff). Each example has `semantic`
(class ids) and `panoptic` (class * 1000 + instance; things numbered 1, 2, ... per class in the
JSON's order, stuff 0), decoded with `segjax.data.coco_panoptic.from_coco_panoptic`. Crowd
segments and unlabelled pixels are void.
"""

import json
import pathlib

import numpy as np
from PIL import Image, UnidentifiedImageError

from segjax.data.builders.coco import CocoError, split_root
from segjax.data.coco_panoptic import LABEL_DIVISOR, from_coco_panoptic
from segjax.data.dataset import Dataset


def _read_rgb(path: pathlib.Path) -> np.ndarray:
  try:
    with Image.open(path) as file:
      return np.asarray(file.convert("RGB"))
  except (FileNotFoundError, UnidentifiedImageError, OSError) as error:
    raise CocoError(f"{path} cannot be read as an image ({error}).") from error


class CocoPanopticSource:
  """Random-access COCO panoptic examples of one split."""

  def __init__(
    self,
    annotations: pathlib.Path,
    png_dir: pathlib.Path,
    images_dir: pathlib.Path,
    ignore_index: int,
  ):
    if not annotations.is_file():
      raise CocoError(
        f"{annotations} is missing: download the COCO 2017 panoptic annotations and unpack them "
        f"into {annotations.parent.parent} (annotations/panoptic_*.json)."
      )
    if not png_dir.is_dir():
      raise CocoError(
        f"{png_dir} is not a folder: unzip {png_dir.name}.zip (from the panoptic annotations) "
        f"into {png_dir.parent}."
      )
    if not images_dir.is_dir():
      raise CocoError(f"{images_dir} is not a folder: unpack the COCO images there.")
    try:
      data = json.loads(annotations.read_text())
      categories = sorted(data["categories"], key=lambda c: c["id"])
      image_files = {image["id"]: image["file_name"] for image in data["images"]}
      self._annotations = sorted(data["annotations"], key=lambda a: a["image_id"])
      self._image_files = [image_files[a["image_id"]] for a in self._annotations]
      self.class_names = tuple(c["name"] for c in categories)
      self.category_ids = tuple(int(c["id"]) for c in categories)
      self.things = tuple(i for i, c in enumerate(categories) if c["isthing"])
    except (json.JSONDecodeError, KeyError, TypeError) as error:
      raise CocoError(f"{annotations} is not a COCO panoptic file ({error!r}).") from error
    self.stuff = tuple(i for i in range(len(categories)) if i not in self.things)
    self._class_of = {c["id"]: i for i, c in enumerate(categories)}
    self._json = annotations
    self._png_dir = png_dir
    self._images_dir = images_dir
    self._ignore_index = ignore_index

  def __len__(self) -> int:
    return len(self._annotations)

  def image_file(self, index: int) -> pathlib.Path:
    return self._images_dir / self._image_files[index]

  def __getitem__(self, index: int) -> dict:
    annotation = self._annotations[index]
    image_path = self.image_file(index)
    png_path = self._png_dir / annotation["file_name"]
    image = _read_rgb(image_path)
    rgb = _read_rgb(png_path)
    if rgb.shape != image.shape:
      raise CocoError(
        f"{png_path} is {rgb.shape[1]}x{rgb.shape[0]} but {image_path} is "
        f"{image.shape[1]}x{image.shape[0]}: unpack both from the same COCO release again."
      )
    try:
      panoptic = from_coco_panoptic(
        rgb,
        annotation["segments_info"],
        class_of_category=self._class_of,
        things=self.things,
        ignore_index=self._ignore_index,
      )
    except KeyError as error:
      raise CocoError(
        f"{self._json}: the segments of {annotation['file_name']} lack a field or name a "
        f"category that its categories do not list ({error!r})."
      ) from error
    semantic = (panoptic // LABEL_DIVISOR).astype(np.uint8)
    return {"image": image, "semantic": semantic, "panoptic": panoptic}


def load(data_config, split: str) -> Dataset:
  """Opens `data_config.root`'s COCO 2017 panoptic `split` ("train" or "validation")."""
  root, name = split_root(data_config, split)
  source = CocoPanopticSource(
    root / "annotations" / f"panoptic_{name}.json",
    root / "annotations" / f"panoptic_{name}",
    root / name,
    data_config.ignore_index,
  )
  return Dataset(
    source,
    class_names=source.class_names,
    things=source.things,
    stuff=source.stuff,
    cache_dir=str(root),
    category_ids=source.category_ids,
  )

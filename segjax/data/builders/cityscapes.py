"""Cityscapes (fine annotations) read from the official download, with the 19 train ids.

Layout (`config.data.root`): the two zips from the Cityscapes site unpacked side by side,

    root/leftImg8bit/{train,val}/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    root/gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png  (and _instanceIds)

Split "train" reads train and "validation" val. `LABELS` is cityscapesscripts' label table: each
of the 34 label ids maps to one of the 19 train ids or to void (255), so no preprocessing
(`csCreateTrainIdLabelImgs`) is needed. Each example has `semantic` (train ids) and `panoptic`
(train id * 1000 + instance) from the instance-id images (`labelId * 1000 + k` for an instance,
`labelId` elsewhere); the 8 classes from person to bicycle are things.
"""

import pathlib
from typing import NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from segjax.data.dataset import Dataset, ImageFiles
from segjax.errors import InputError

SPLITS = {"train": "train", "validation": "val"}
LABEL_DIVISOR = 1000
VOID = 255


class Label(NamedTuple):
  name: str
  id: int
  train_id: int  # 255: void
  has_instances: bool
  color: tuple[int, int, int]


# cityscapesscripts/helpers/labels.py, in label-id order (license plate, id -1, is never in the
# label images).
LABELS = (
  Label("unlabeled", 0, VOID, False, (0, 0, 0)),
  Label("ego vehicle", 1, VOID, False, (0, 0, 0)),
  Label("rectification border", 2, VOID, False, (0, 0, 0)),
  Label("out of roi", 3, VOID, False, (0, 0, 0)),
  Label("static", 4, VOID, False, (0, 0, 0)),
  Label("dynamic", 5, VOID, False, (111, 74, 0)),
  Label("ground", 6, VOID, False, (81, 0, 81)),
  Label("road", 7, 0, False, (128, 64, 128)),
  Label("sidewalk", 8, 1, False, (244, 35, 232)),
  Label("parking", 9, VOID, False, (250, 170, 160)),
  Label("rail track", 10, VOID, False, (230, 150, 140)),
  Label("building", 11, 2, False, (70, 70, 70)),
  Label("wall", 12, 3, False, (102, 102, 156)),
  Label("fence", 13, 4, False, (190, 153, 153)),
  Label("guard rail", 14, VOID, False, (180, 165, 180)),
  Label("bridge", 15, VOID, False, (150, 100, 100)),
  Label("tunnel", 16, VOID, False, (150, 120, 90)),
  Label("pole", 17, 5, False, (153, 153, 153)),
  Label("polegroup", 18, VOID, False, (153, 153, 153)),
  Label("traffic light", 19, 6, False, (250, 170, 30)),
  Label("traffic sign", 20, 7, False, (220, 220, 0)),
  Label("vegetation", 21, 8, False, (107, 142, 35)),
  Label("terrain", 22, 9, False, (152, 251, 152)),
  Label("sky", 23, 10, False, (70, 130, 180)),
  Label("person", 24, 11, True, (220, 20, 60)),
  Label("rider", 25, 12, True, (255, 0, 0)),
  Label("car", 26, 13, True, (0, 0, 142)),
  Label("truck", 27, 14, True, (0, 0, 70)),
  Label("bus", 28, 15, True, (0, 60, 100)),
  Label("caravan", 29, VOID, True, (0, 0, 90)),
  Label("trailer", 30, VOID, True, (0, 0, 110)),
  Label("train", 31, 16, True, (0, 80, 100)),
  Label("motorcycle", 32, 17, True, (0, 0, 230)),
  Label("bicycle", 33, 18, True, (119, 11, 32)),
)
TRAIN_LABELS = sorted(
  (label for label in LABELS if label.train_id != VOID), key=lambda label: label.train_id
)
CLASS_NAMES = tuple(label.name for label in TRAIN_LABELS)
COLORS = tuple(label.color for label in TRAIN_LABELS)
THINGS = tuple(label.train_id for label in TRAIN_LABELS if label.has_instances)
STUFF = tuple(label.train_id for label in TRAIN_LABELS if not label.has_instances)

# Label id -> train id, for every 8-bit value (ids beyond the table are void).
TRAIN_ID = np.full(256, VOID, np.uint8)
for _label in LABELS:
  TRAIN_ID[_label.id] = _label.train_id


class CityscapesError(InputError):
  """A file of the user's Cityscapes copy is missing or unreadable."""


def _read(path: pathlib.Path) -> np.ndarray:
  try:
    with Image.open(path) as image:
      return np.asarray(image)
  except (FileNotFoundError, UnidentifiedImageError, OSError) as error:
    raise CityscapesError(f"{path} cannot be read ({error}); unpack it again.") from error


class CityscapesSource(ImageFiles):
  """Random-access examples of one split of the official layout."""

  def __init__(self, root: pathlib.Path, split: str):
    images_dir, labels_dir = root / "leftImg8bit" / split, root / "gtFine" / split
    for folder, archive in (
      (images_dir, "leftImg8bit_trainvaltest.zip"),
      (labels_dir, "gtFine_trainvaltest.zip"),
    ):
      if not folder.is_dir():
        raise CityscapesError(
          f"{folder} is missing: download {archive} from https://www.cityscapes-dataset.com "
          f"(after registering) and unpack it into {root}."
        )
    self._images = sorted(images_dir.glob("*/*_leftImg8bit.png"))
    if not self._images:
      raise CityscapesError(f"{images_dir} has no <city>/*_leftImg8bit.png images.")
    self._labels = []
    for image in self._images:
      stem = image.name.removesuffix("_leftImg8bit.png")
      base = labels_dir / image.parent.name / f"{stem}_gtFine"
      for suffix in ("_labelIds.png", "_instanceIds.png"):
        if not base.with_name(base.name + suffix).is_file():
          raise CityscapesError(
            f"{image} has no {base.name + suffix} in {base.parent}: unpack gtFine_trainvaltest.zip "
            "completely (the label and instance id images of every image)."
          )
      self._labels.append(base)

  def __getitem__(self, index: int) -> dict:
    base = self._labels[index]
    label_ids = _read(base.with_name(base.name + "_labelIds.png"))
    instance_ids = _read(base.with_name(base.name + "_instanceIds.png")).astype(np.int64)
    semantic = TRAIN_ID[label_ids]
    # instanceIds: labelId * 1000 + k on instances, the label id elsewhere (crowds included).
    instance = np.where(instance_ids >= LABEL_DIVISOR, instance_ids % LABEL_DIVISOR, 0)
    panoptic = semantic.astype(np.int32) * LABEL_DIVISOR + instance.astype(np.int32)
    panoptic[semantic == VOID] = VOID * LABEL_DIVISOR
    image = _read(self._images[index])[..., :3]
    return {"image": image, "semantic": semantic, "panoptic": panoptic}


def load(data_config, split: str) -> Dataset:
  """Opens `data_config.root` (the unpacked official zips) for `split` ("train", "validation")."""
  if split not in SPLITS:
    raise CityscapesError(f"Cityscapes split {split!r}: use one of {list(SPLITS)}.")
  if not data_config.root:
    raise CityscapesError(
      "config.data.root is empty: set it to the folder that holds leftImg8bit/ and gtFine/."
    )
  if data_config.ignore_index != VOID:
    raise CityscapesError(
      f"config.data.ignore_index={data_config.ignore_index}: Cityscapes marks void with 255."
    )
  root = pathlib.Path(data_config.root).expanduser()
  source = CityscapesSource(root, SPLITS[split])
  return Dataset(
    source,
    class_names=CLASS_NAMES,
    things=THINGS,
    stuff=STUFF,
    cache_dir=str(root),
    colors=COLORS,
  )

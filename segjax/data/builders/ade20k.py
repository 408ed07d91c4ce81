"""ADE20K as the MIT Scene Parsing benchmark (SceneParse150) distributes it, with its 150 classes.

Layout (`config.data.root`): ADEChallengeData2016.zip unpacked there (root may also be the
ADEChallengeData2016 folder itself),

    root/ADEChallengeData2016/images/{training,validation}/ADE_train_00000001.jpg
    root/ADEChallengeData2016/annotations/{training,validation}/ADE_train_00000001.png

Split "train" reads training (20,210 images) and "validation" validation (2,000). Annotations are
8-bit: 0 is "other" (unlabelled) and 1..150 the classes of `LABELS`. As in mmsegmentation
(`reduce_zero_label`), 0 becomes void (255) and value k class k - 1, so the classes are 0..149.
Names and colours are mmsegmentation's (mmseg/datasets/ade.py), whose palette gives road and
skyscraper the same grey. Examples have `semantic` only: the benchmark has no instances.
"""

import pathlib
from typing import NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from segjax.data.dataset import Dataset, ImageFiles
from segjax.errors import InputError

SPLITS = {"train": "training", "validation": "validation"}
FOLDER = "ADEChallengeData2016"
ARCHIVE = "ADEChallengeData2016.zip"
SITE = "http://sceneparsing.csail.mit.edu"
VOID = 255


class Label(NamedTuple):
  name: str
  value: int  # in the annotation images; the class id is value - 1
  color: tuple[int, int, int]


# SceneParse150 in annotation-value order, names and palette as mmsegmentation has them.
LABELS = (
  Label("wall", 1, (120, 120, 120)),
  Label("building", 2, (180, 120, 120)),
  Label("sky", 3, (6, 230, 230)),
  Label("floor", 4, (80, 50, 50)),
  Label("tree", 5, (4, 200, 3)),
  Label("ceiling", 6, (120, 120, 80)),
  Label("road", 7, (140, 140, 140)),
  Label("bed", 8, (204, 5, 255)),
  Label("windowpane", 9, (230, 230, 230)),
  Label("grass", 10, (4, 250, 7)),
  Label("cabinet", 11, (224, 5, 255)),
  Label("sidewalk", 12, (235, 255, 7)),
  Label("person", 13, (150, 5, 61)),
  Label("earth", 14, (120, 120, 70)),
  Label("door", 15, (8, 255, 51)),
  Label("table", 16, (255, 6, 82)),
  Label("mountain", 17, (143, 255, 140)),
  Label("plant", 18, (204, 255, 4)),
  Label("curtain", 19, (255, 51, 7)),
  Label("chair", 20, (204, 70, 3)),
  Label("car", 21, (0, 102, 200)),
  Label("water", 22, (61, 230, 250)),
  Label("painting", 23, (255, 6, 51)),
  Label("sofa", 24, (11, 102, 255)),
  Label("shelf", 25, (255, 7, 71)),
  Label("house", 26, (255, 9, 224)),
  Label("sea", 27, (9, 7, 230)),
  Label("mirror", 28, (220, 220, 220)),
  Label("rug", 29, (255, 9, 92)),
  Label("field", 30, (112, 9, 255)),
  Label("armchair", 31, (8, 255, 214)),
  Label("seat", 32, (7, 255, 224)),
  Label("fence", 33, (255, 184, 6)),
  Label("desk", 34, (10, 255, 71)),
  Label("rock", 35, (255, 41, 10)),
  Label("wardrobe", 36, (7, 255, 255)),
  Label("lamp", 37, (224, 255, 8)),
  Label("bathtub", 38, (102, 8, 255)),
  Label("railing", 39, (255, 61, 6)),
  Label("cushion", 40, (255, 194, 7)),
  Label("base", 41, (255, 122, 8)),
  Label("box", 42, (0, 255, 20)),
  Label("column", 43, (255, 8, 41)),
  Label("signboard", 44, (255, 5, 153)),
  Label("chest of drawers", 45, (6, 51, 255)),
  Label("counter", 46, (235, 12, 255)),
  Label("sand", 47, (160, 150, 20)),
  Label("sink", 48, (0, 163, 255)),
  Label("skyscraper", 49, (140, 140, 140)),
  Label("fireplace", 50, (250, 10, 15)),
  Label("refrigerator", 51, (20, 255, 0)),
  Label("grandstand", 52, (31, 255, 0)),
  Label("path", 53, (255, 31, 0)),
  Label("stairs", 54, (255, 224, 0)),
  Label("runway", 55, (153, 255, 0)),
  Label("case", 56, (0, 0, 255)),
  Label("pool table", 57, (255, 71, 0)),
  Label("pillow", 58, (0, 235, 255)),
  Label("screen door", 59, (0, 173, 255)),
  Label("stairway", 60, (31, 0, 255)),
  Label("river", 61, (11, 200, 200)),
  Label("bridge", 62, (255, 82, 0)),
  Label("bookcase", 63, (0, 255, 245)),
  Label("blind", 64, (0, 61, 255)),
  Label("coffee table", 65, (0, 255, 112)),
  Label("toilet", 66, (0, 255, 133)),
  Label("flower", 67, (255, 0, 0)),
  Label("book", 68, (255, 163, 0)),
  Label("hill", 69, (255, 102, 0)),
  Label("bench", 70, (194, 255, 0)),
  Label("countertop", 71, (0, 143, 255)),
  Label("stove", 72, (51, 255, 0)),
  Label("palm", 73, (0, 82, 255)),
  Label("kitchen island", 74, (0, 255, 41)),
  Label("computer", 75, (0, 255, 173)),
  Label("swivel chair", 76, (10, 0, 255)),
  Label("boat", 77, (173, 255, 0)),
  Label("bar", 78, (0, 255, 153)),
  Label("arcade machine", 79, (255, 92, 0)),
  Label("hovel", 80, (255, 0, 255)),
  Label("bus", 81, (255, 0, 245)),
  Label("towel", 82, (255, 0, 102)),
  Label("light", 83, (255, 173, 0)),
  Label("truck", 84, (255, 0, 20)),
  Label("tower", 85, (255, 184, 184)),
  Label("chandelier", 86, (0, 31, 255)),
  Label("awning", 87, (0, 255, 61)),
  Label("streetlight", 88, (0, 71, 255)),
  Label("booth", 89, (255, 0, 204)),
  Label("television receiver", 90, (0, 255, 194)),
  Label("airplane", 91, (0, 255, 82)),
  Label("dirt track", 92, (0, 10, 255)),
  Label("apparel", 93, (0, 112, 255)),
  Label("pole", 94, (51, 0, 255)),
  Label("land", 95, (0, 194, 255)),
  Label("bannister", 96, (0, 122, 255)),
  Label("escalator", 97, (0, 255, 163)),
  Label("ottoman", 98, (255, 153, 0)),
  Label("bottle", 99, (0, 255, 10)),
  Label("buffet", 100, (255, 112, 0)),
  Label("poster", 101, (143, 255, 0)),
  Label("stage", 102, (82, 0, 255)),
  Label("van", 103, (163, 255, 0)),
  Label("ship", 104, (255, 235, 0)),
  Label("fountain", 105, (8, 184, 170)),
  Label("conveyer belt", 106, (133, 0, 255)),
  Label("canopy", 107, (0, 255, 92)),
  Label("washer", 108, (184, 0, 255)),
  Label("plaything", 109, (255, 0, 31)),
  Label("swimming pool", 110, (0, 184, 255)),
  Label("stool", 111, (0, 214, 255)),
  Label("barrel", 112, (255, 0, 112)),
  Label("basket", 113, (92, 255, 0)),
  Label("waterfall", 114, (0, 224, 255)),
  Label("tent", 115, (112, 224, 255)),
  Label("bag", 116, (70, 184, 160)),
  Label("minibike", 117, (163, 0, 255)),
  Label("cradle", 118, (153, 0, 255)),
  Label("oven", 119, (71, 255, 0)),
  Label("ball", 120, (255, 0, 163)),
  Label("food", 121, (255, 204, 0)),
  Label("step", 122, (255, 0, 143)),
  Label("tank", 123, (0, 255, 235)),
  Label("trade name", 124, (133, 255, 0)),
  Label("microwave", 125, (255, 0, 235)),
  Label("pot", 126, (245, 0, 255)),
  Label("animal", 127, (255, 0, 122)),
  Label("bicycle", 128, (255, 245, 0)),
  Label("lake", 129, (10, 190, 212)),
  Label("dishwasher", 130, (214, 255, 0)),
  Label("screen", 131, (0, 204, 255)),
  Label("blanket", 132, (20, 0, 255)),
  Label("sculpture", 133, (255, 255, 0)),
  Label("hood", 134, (0, 153, 255)),
  Label("sconce", 135, (0, 41, 255)),
  Label("vase", 136, (0, 255, 204)),
  Label("traffic light", 137, (41, 0, 255)),
  Label("tray", 138, (41, 255, 0)),
  Label("ashcan", 139, (173, 0, 255)),
  Label("fan", 140, (0, 245, 255)),
  Label("pier", 141, (71, 0, 255)),
  Label("crt screen", 142, (122, 0, 255)),
  Label("plate", 143, (0, 255, 184)),
  Label("monitor", 144, (0, 92, 255)),
  Label("bulletin board", 145, (184, 255, 0)),
  Label("shower", 146, (0, 133, 255)),
  Label("radiator", 147, (255, 214, 0)),
  Label("glass", 148, (25, 194, 194)),
  Label("clock", 149, (102, 255, 0)),
  Label("flag", 150, (92, 0, 255)),
)
CLASS_NAMES = tuple(label.name for label in LABELS)
COLORS = tuple(label.color for label in LABELS)

# Annotation value -> class id, for every 8-bit value (0 and values beyond 150 are void).
CLASS_ID = np.full(256, VOID, np.uint8)
for _label in LABELS:
  CLASS_ID[_label.value] = _label.value - 1


class Ade20kError(InputError):
  """A file of the user's ADE20K copy is missing, unreadable or inconsistent."""


def _open(path: pathlib.Path) -> Image.Image:
  try:
    image = Image.open(path)
    image.load()
    return image
  except (FileNotFoundError, UnidentifiedImageError, OSError) as error:
    raise Ade20kError(f"{path} cannot be read ({error}); unpack {ARCHIVE} again.") from error


def find_root(root: pathlib.Path) -> pathlib.Path:
  """The ADEChallengeData2016 folder: `root`'s child of that name, or `root` itself (named so, or
  holding images/ and annotations/)."""
  if (root / FOLDER).is_dir():
    return root / FOLDER
  if root.name == FOLDER or ((root / "images").is_dir() and (root / "annotations").is_dir()):
    return root
  raise Ade20kError(
    f"{root} has no {FOLDER}/ folder: download {ARCHIVE} from the MIT Scene Parsing benchmark "
    f"({SITE}) and unpack it into {root}."
  )


class Ade20kSource(ImageFiles):
  """Random-access examples of one split (`training`, `validation`) of the official layout."""

  def __init__(self, data_dir: pathlib.Path, split: str):
    images_dir = data_dir / "images" / split
    labels_dir = data_dir / "annotations" / split
    for folder in (images_dir, labels_dir):
      if not folder.is_dir():
        raise Ade20kError(f"{folder} is missing: unpack {ARCHIVE} again, completely.")
    self._images = sorted(images_dir.glob("*.jpg"))
    if not self._images:
      raise Ade20kError(f"{images_dir} has no .jpg images: unpack {ARCHIVE} again.")
    self._labels = [labels_dir / f"{image.stem}.png" for image in self._images]
    for image, label in zip(self._images, self._labels, strict=True):
      if not label.is_file():
        raise Ade20kError(
          f"{image} has no annotation {label.name} in {labels_dir}: unpack {ARCHIVE} again, "
          "completely (one .png per image)."
        )

  def __getitem__(self, index: int) -> dict:
    """`{"image": u8[H,W,3], "semantic": u8[H,W]}` (class ids 0..149, 255 void)."""
    image_path, label_path = self._images[index], self._labels[index]
    with _open(label_path) as label:
      if label.mode not in ("L", "P"):
        raise Ade20kError(
          f"{label_path} is a {label.mode} image, not a single-channel 8-bit one: ADE20K "
          f"annotations hold one class value (0..150) per pixel; unpack {ARCHIVE} again."
        )
      values = np.asarray(label)
    with _open(image_path) as image:
      rgb = np.asarray(image.convert("RGB"))
    if rgb.shape[:2] != values.shape:
      raise Ade20kError(
        f"{image_path} is {rgb.shape[1]}x{rgb.shape[0]} but its annotation {label_path} is "
        f"{values.shape[1]}x{values.shape[0]}: unpack {ARCHIVE} again."
      )
    return {"image": rgb, "semantic": CLASS_ID[values]}


def load(data_config, split: str) -> Dataset:
  """Opens `data_config.root` (ADEChallengeData2016.zip unpacked) for `split`."""
  if split not in SPLITS:
    raise Ade20kError(f"ADE20K split {split!r}: use one of {list(SPLITS)}.")
  if not data_config.root:
    raise Ade20kError(
      f"config.data.root is empty: set it to the folder that holds {FOLDER}/ (or to that folder)."
    )
  if data_config.ignore_index != VOID:
    raise Ade20kError(
      f"config.data.ignore_index={data_config.ignore_index}: segjax reads ADE20K's unlabelled "
      f"pixels (value 0) as {VOID}; set config.data.ignore_index = {VOID}."
    )
  root = pathlib.Path(data_config.root).expanduser()
  source = Ade20kSource(find_root(root), SPLITS[split])
  return Dataset(source, class_names=CLASS_NAMES, cache_dir=str(root), colors=COLORS)

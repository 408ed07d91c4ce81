"""The Oxford-IIIT Pet data set's trimaps (pet, background, border) read from the official download.

Layout (`config.data.root`): images.tar.gz and annotations.tar.gz from the Oxford VGG pets page
unpacked side by side,

    root/images/Abyssinian_1.jpg
    root/annotations/trimaps/Abyssinian_1.png     (8-bit: 1 pet, 2 background, 3 border)
    root/annotations/trainval.txt, test.txt       ("Abyssinian_1 1 1 1": name, class, species,
                                                   breed; lines starting with "#" are comments)

Split "train" reads the names of trainval.txt (3,680) and "validation" those of test.txt (3,669).
Trimap value v becomes class v - 1, as in the Keras and TensorFlow tutorials, so the classes are
pet 0, background 1, border 2; any other value is void (255). A few images are PNG, CMYK or
grayscale files despite their .jpg name: PIL decodes them by content and they are made RGB.
"""

import pathlib

import numpy as np
from PIL import Image, UnidentifiedImageError

from segjax.data.dataset import Dataset, ImageFiles
from segjax.errors import InputError

SPLITS = {"train": "trainval", "validation": "test"}
SITE = "https://www.robots.ox.ac.uk/~vgg/data/pets/"
VOID = 255

CLASS_NAMES = ("pet", "background", "border")
# segjax's choice (the data set has none): crimson, steel blue, yellow; none black, which the
# overlays keep for void.
COLORS = ((220, 20, 60), (70, 130, 180), (250, 220, 0))

# Trimap value -> class id, for every 8-bit value (values other than 1, 2, 3 are void).
CLASS_ID = np.full(256, VOID, np.uint8)
CLASS_ID[1 : 1 + len(CLASS_NAMES)] = np.arange(len(CLASS_NAMES))


class PetsError(InputError):
  """A file of the user's Oxford-IIIT Pet copy is missing, unreadable or inconsistent."""


def _open(path: pathlib.Path, archive: str) -> Image.Image:
  try:
    image = Image.open(path)
    image.load()
    return image
  except (FileNotFoundError, UnidentifiedImageError, OSError) as error:
    raise PetsError(f"{path} cannot be read ({error}); unpack {archive} again.") from error


def read_split_list(path: pathlib.Path) -> list[str]:
  """The image names of a split list (the first word of each line that is not a comment)."""
  try:
    lines = path.read_text().splitlines()
  except OSError as error:
    raise PetsError(
      f"{path} cannot be read ({error}): download annotations.tar.gz from {SITE} and unpack it "
      f"into {path.parent.parent}."
    ) from error
  names = [line.split()[0] for line in lines if line.strip() and not line.startswith("#")]
  if not names:
    raise PetsError(f"{path} lists no images: unpack annotations.tar.gz again.")
  return names


class PetsSource(ImageFiles):
  """Random-access examples of the images that one split list names."""

  def __init__(self, root: pathlib.Path, split: str):
    images_dir, annotations_dir = root / "images", root / "annotations"
    for folder, archive in ((images_dir, "images.tar.gz"), (annotations_dir, "annotations.tar.gz")):
      if not folder.is_dir():
        raise PetsError(
          f"{folder} is missing: download {archive} from {SITE} and unpack it into {root}."
        )
    split_list = annotations_dir / f"{split}.txt"
    names = read_split_list(split_list)
    self._images = [images_dir / f"{name}.jpg" for name in names]
    self._trimaps = [annotations_dir / "trimaps" / f"{name}.png" for name in names]
    for image, trimap in zip(self._images, self._trimaps, strict=True):
      for path, archive in ((image, "images.tar.gz"), (trimap, "annotations.tar.gz")):
        if not path.is_file():
          raise PetsError(
            f"{path} is missing, but {split_list} lists {image.stem}: unpack {archive} again, "
            "completely."
          )

  def __getitem__(self, index: int) -> dict:
    """`{"image": u8[H,W,3], "semantic": u8[H,W]}` (pet 0, background 1, border 2, 255 void)."""
    image_path, trimap_path = self._images[index], self._trimaps[index]
    with _open(trimap_path, "annotations.tar.gz") as trimap:
      if trimap.mode not in ("L", "P"):
        raise PetsError(
          f"{trimap_path} is a {trimap.mode} image, not a single-channel 8-bit trimap (values "
          "1, 2, 3): unpack annotations.tar.gz again."
        )
      values = np.asarray(trimap)
    with _open(image_path, "images.tar.gz") as image:
      rgb = np.asarray(image.convert("RGB"))
    if rgb.shape[:2] != values.shape:
      raise PetsError(
        f"{image_path} is {rgb.shape[1]}x{rgb.shape[0]} but its trimap {trimap_path} is "
        f"{values.shape[1]}x{values.shape[0]}: unpack images.tar.gz and annotations.tar.gz again."
      )
    return {"image": rgb, "semantic": CLASS_ID[values]}


def load(data_config, split: str) -> Dataset:
  """Opens `data_config.root` (images.tar.gz and annotations.tar.gz unpacked) for `split`."""
  if split not in SPLITS:
    raise PetsError(f"Oxford-IIIT Pet split {split!r}: use one of {list(SPLITS)}.")
  if not data_config.root:
    raise PetsError(
      "config.data.root is empty: set it to the folder that holds images/ and annotations/."
    )
  if data_config.ignore_index != VOID:
    raise PetsError(
      f"config.data.ignore_index={data_config.ignore_index}: segjax reads trimap values other "
      f"than 1, 2, 3 as {VOID}; set config.data.ignore_index = {VOID}."
    )
  root = pathlib.Path(data_config.root).expanduser()
  source = PetsSource(root, SPLITS[split])
  return Dataset(source, class_names=CLASS_NAMES, cache_dir=str(root), colors=COLORS)

"""A tiny copy of the official Oxford-IIIT Pet layout: images/, annotations/trimaps/ and the
trainval.txt and test.txt split lists, made by the tests themselves."""

import pathlib

import numpy as np
from PIL import Image

TRAINVAL = ("Abyssinian_1", "beagle_2")
TEST = ("Bombay_3",)


def trimap(size: tuple[int, int] = (6, 8)) -> np.ndarray:
  """u8[H,W] trimap values 0, 1, 2, 3, 4, 0, ... in raster order (0 and 4 are not trimap values)."""
  return (np.arange(size[0] * size[1]) % 5).reshape(size).astype(np.uint8)


def write_pets(
  root: pathlib.Path,
  trainval: tuple[str, ...] = TRAINVAL,
  test: tuple[str, ...] = TEST,
  grayscale: tuple[str, ...] = (),
  unlisted: tuple[str, ...] = (),
  size: tuple[int, int] = (6, 8),
) -> pathlib.Path:
  """A JPEG image and a trimap (`trimap(size)`) for each name of the two lists and of `unlisted`
  (in neither list); the images of `grayscale` are 8-bit grayscale JPEGs. Returns `root`."""
  images, trimaps = root / "images", root / "annotations" / "trimaps"
  images.mkdir(parents=True)
  trimaps.mkdir(parents=True)
  rng = np.random.default_rng(len(trainval) + len(test))
  for name in trainval + test + unlisted:
    pixels = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
    image = Image.fromarray(pixels).convert("L") if name in grayscale else Image.fromarray(pixels)
    image.save(images / f"{name}.jpg")
    Image.fromarray(trimap(size)).save(trimaps / f"{name}.png")
  for list_name, names in (("trainval", trainval), ("test", test)):
    lines = ["#Image CLASS-ID SPECIES BREED ID"] + [f"{name} 1 1 1" for name in names]
    (root / "annotations" / f"{list_name}.txt").write_text("\n".join(lines) + "\n")
  return root

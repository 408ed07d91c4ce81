"""A tiny copy of the official ADE20K (SceneParse150) layout: ADEChallengeData2016/images/ and
annotations/ of one split, made by the tests themselves."""

import pathlib

import numpy as np
from PIL import Image

# The first row of every annotation written; the other rows repeat 1..40.
FIRST_ROW = (0, 1, 2, 3, 13, 149, 150, 151)


def annotation(size: tuple[int, int] = (6, 8)) -> np.ndarray:
  """u8[H,W] annotation values: `FIRST_ROW` (W must be 8), then 1, 2, ... in raster order."""
  values = (np.arange(size[0] * size[1]) % 40 + 1).reshape(size).astype(np.uint8)
  values[0] = FIRST_ROW
  return values


def write_ade20k(
  root: pathlib.Path,
  split: str = "training",
  count: int = 2,
  size: tuple[int, int] = (6, 8),
) -> pathlib.Path:
  """`count` JPEG images of `size` and their 8-bit annotations (`annotation(size)`) under
  root/ADEChallengeData2016; returns `root`."""
  data = root / "ADEChallengeData2016"
  images, labels = data / "images" / split, data / "annotations" / split
  images.mkdir(parents=True)
  labels.mkdir(parents=True)
  prefix = "ADE_train" if split == "training" else "ADE_val"
  rng = np.random.default_rng(count)
  for k in range(1, count + 1):
    stem = f"{prefix}_{k:08d}"
    Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(images / f"{stem}.jpg")
    Image.fromarray(annotation(size)).save(labels / f"{stem}.png")
  return root

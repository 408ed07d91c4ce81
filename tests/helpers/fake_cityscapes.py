"""A tiny copy of the official Cityscapes layout: leftImg8bit/ and gtFine/ label and instance id
images, made by the tests themselves."""

import pathlib

import numpy as np
from PIL import Image


def write_cityscapes(
  root: pathlib.Path,
  split: str = "train",
  cities: tuple[str, ...] = ("aachen", "bremen"),
  size: tuple[int, int] = (6, 8),
  random_labels: bool = False,
) -> pathlib.Path:
  """One image per city. Label ids are 0..33 in raster order (or random with `random_labels`);
  the instance image has car pixels as instance 26001 and the other pixels as their label id
  (person pixels therefore a crowd without an instance)."""
  rng = np.random.default_rng(len(split) + len(cities))
  for city in cities:
    images, labels = root / "leftImg8bit" / split / city, root / "gtFine" / split / city
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    stem = f"{city}_000000_000019"
    image = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
    Image.fromarray(image).save(images / f"{stem}_leftImg8bit.png")
    if random_labels:
      label_ids = rng.integers(0, 34, size).astype(np.uint8)
    else:
      label_ids = (np.arange(size[0] * size[1]) % 34).reshape(size).astype(np.uint8)
    Image.fromarray(label_ids).save(labels / f"{stem}_gtFine_labelIds.png")
    instance_ids = label_ids.astype(np.int32)
    instance_ids[label_ids == 26] = 26001
    Image.fromarray(instance_ids.astype(np.uint16)).save(labels / f"{stem}_gtFine_instanceIds.png")
  return root

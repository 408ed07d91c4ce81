"""The `folder` data set: the user's own images and PNG label masks.

Layout (`config.data.root`):

    root/
      classes.json          ["background", "cat", "dog"]: class id i is the i-th name
      train/images/*.jpg    any format PIL reads
      train/masks/*.png     single-channel PNG, the image's stem, pixel = class id or ignore_index
      validation/images/…   one folder per split

Every file is checked when the split is opened, so a bad file fails before training starts, with
its path and what to do.
"""

import json
import pathlib

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from segjax.data.dataset import Dataset
from segjax.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class FolderError(InputError):
  """A file or folder of a `folder` data set is missing or malformed."""


def read_class_names(root: pathlib.Path) -> tuple[str, ...]:
  path = root / "classes.json"
  if not path.is_file():
    raise FolderError(
      f"{path} is missing: write the class names as a JSON list, e.g. "
      '["background", "cat", "dog"] (class id i is the i-th name).'
    )
  try:
    names = json.loads(path.read_text())
  except json.JSONDecodeError as error:
    raise FolderError(f"{path} is not valid JSON ({error}).") from error
  if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
    raise FolderError(f'{path} must hold a non-empty JSON list of names, e.g. ["bg", "cat"].')
  return tuple(names)


def _read_image(path: pathlib.Path) -> np.ndarray:
  try:
    with Image.open(path) as image:
      return np.asarray(image.convert("RGB"))
  except (UnidentifiedImageError, OSError) as error:
    raise FolderError(
      f"{path} cannot be read as an image ({error}); replace or remove it."
    ) from error


def _read_mask(path: pathlib.Path) -> np.ndarray:
  try:
    with Image.open(path) as mask:
      if mask.mode not in ("L", "P", "I", "I;16"):
        raise FolderError(
          f"{path} has mode {mask.mode}: masks must be single-channel PNGs whose pixel values are "
          "class ids (mode L or P), not colours."
        )
      return np.asarray(mask)
  except (UnidentifiedImageError, OSError) as error:
    raise FolderError(
      f"{path} cannot be read as a mask ({error}); replace or remove it."
    ) from error


class FolderSource:
  """Random-access (image, semantic) pairs of one split folder, checked when opened."""

  def __init__(self, split_dir: pathlib.Path, num_classes: int, ignore_index: int):
    images_dir, masks_dir = split_dir / "images", split_dir / "masks"
    for folder in (images_dir, masks_dir):
      if not folder.is_dir():
        raise FolderError(f"{folder} is not a folder; expected {split_dir}/images and /masks.")
    self._images = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not self._images:
      raise FolderError(f"{images_dir} has no images ({', '.join(IMAGE_SUFFIXES)}).")
    self._masks = [masks_dir / f"{p.stem}.png" for p in self._images]
    self._num_classes, self._ignore_index = num_classes, ignore_index
    for image_path, mask_path in tqdm(
      list(zip(self._images, self._masks, strict=True)),
      desc=f"Checking {split_dir}",
      disable=len(self._images) < 200,
    ):
      self._check(image_path, mask_path)

  def _check(self, image_path: pathlib.Path, mask_path: pathlib.Path) -> None:
    if not mask_path.is_file():
      raise FolderError(f"{image_path} has no mask: expected {mask_path}.")
    try:
      with Image.open(image_path) as image:
        image_size = image.size
        image.verify()
    except (UnidentifiedImageError, OSError) as error:
      raise FolderError(
        f"{image_path} cannot be read as an image ({error}); replace or remove it."
      ) from error
    mask = _read_mask(mask_path)
    if mask.shape[::-1] != image_size:
      raise FolderError(
        f"{mask_path} is {mask.shape[1]}x{mask.shape[0]} but {image_path} is "
        f"{image_size[0]}x{image_size[1]} (width x height); a mask must match its image."
      )
    values = np.unique(mask)
    bad = values[(values >= self._num_classes) & (values != self._ignore_index)]
    if bad.size:
      raise FolderError(
        f"{mask_path} has label values {bad.tolist()[:10]} that are neither a class id "
        f"(0..{self._num_classes - 1}, from classes.json) nor ignore_index={self._ignore_index}."
      )

  def __len__(self) -> int:
    return len(self._images)

  def __getitem__(self, index: int) -> dict:
    return {
      "image": _read_image(self._images[index]),
      "semantic": _read_mask(self._masks[index]).astype(np.uint8),
    }


def load(data_config, split: str) -> Dataset:
  """Opens `data_config.root/<split>` as a `Dataset`."""
  if not data_config.root:
    raise FolderError("config.data.root is empty: set it to the folder that holds classes.json.")
  root = pathlib.Path(data_config.root).expanduser()
  if not root.is_dir():
    raise FolderError(f"config.data.root={str(root)!r} is not a folder.")
  split_dir = root / split
  if not split_dir.is_dir():
    splits = sorted(p.name for p in root.iterdir() if (p / "images").is_dir())
    raise FolderError(f"{split_dir} is missing: the split folders under {root} are {splits}.")
  names = read_class_names(root)
  if data_config.ignore_index < len(names):
    raise FolderError(
      f"config.data.ignore_index={data_config.ignore_index} is a class id of {root}/classes.json "
      f"({len(names)} classes); choose a value >= {len(names)}, such as 255."
    )
  source = FolderSource(split_dir, len(names), data_config.ignore_index)
  return Dataset(source, class_names=names, cache_dir=str(root))

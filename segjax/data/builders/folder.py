"""The `folder` data set: the user's images and PNG label masks, optionally with instance masks.

Layout (`config.data.root`):

    root/
      classes.json            ["background", "cat", "dog"]: class id i is the i-th name; or
                              {"classes": [...], "things": ["cat", "dog"]}: the classes that have
                              instances (default: every class but class 0)
      train/images/*.jpg      any format PIL reads
      train/masks/*.png       single-channel PNG, the image's stem, pixel = class id or ignore_index
      train/instances/*.png   optional: single-channel PNG (8-bit, or 16-bit I;16), the image's
                              stem, pixel = instance id within the image (1..999), 0 = no instance
      validation/images/…     one folder per split

A split with `instances/` needs one for every image; its examples also have `panoptic` = class *
1000 + instance (class * 1000 where the instance is 0, ignore_index * 1000 on void), for the
instance, panoptic and promptable tasks, and its `Dataset.things` / `stuff` are the class ids of
the things and of the other classes. Each instance must lie on one class, a thing. A split
without `instances/` has neither `panoptic` nor things and stuff.

Every file is checked when the split is opened, so a bad file fails before training starts, with
its path and what to do.
"""

import difflib
import json
import pathlib

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from segjax.data.dataset import Dataset, ImageFiles
from segjax.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
LABEL_DIVISOR = 1000  # panoptic id = class * LABEL_DIVISOR + instance


class FolderError(InputError):
  """A file or folder of a `folder` data set is missing or malformed."""


def _is_names(value) -> bool:
  return isinstance(value, list) and all(isinstance(n, str) for n in value)


def read_classes(root: pathlib.Path) -> tuple[tuple[str, ...], tuple[int, ...] | None]:
  """The class names of `root/classes.json` and the ids of its "things" (None if not given)."""
  path = root / "classes.json"
  if not path.is_file():
    raise FolderError(
      f"{path} is missing: write the class names as a JSON list, e.g. "
      '["background", "cat", "dog"] (class id i is the i-th name).'
    )
  try:
    content = json.loads(path.read_text())
  except json.JSONDecodeError as error:
    raise FolderError(f"{path} is not valid JSON ({error}).") from error
  if isinstance(content, dict):
    if set(content) - {"classes", "things"} or not _is_names(content.get("things", [])):
      raise FolderError(
        f'{path} must hold {{"classes": [names], "things": [names]}}; it has keys '
        f"{sorted(content)} and things={content.get('things')!r}."
      )
    names, thing_names = content.get("classes"), content.get("things")
  else:
    names, thing_names = content, None
  if not (_is_names(names) and names):
    raise FolderError(
      f'{path} must hold a non-empty JSON list of names, e.g. ["bg", "cat"], or an object '
      '{"classes": [names], "things": [names]}.'
    )
  if thing_names is None:
    return tuple(names), None
  for name in thing_names:
    if name not in names:
      close = difflib.get_close_matches(name, names, n=1)
      hint = f" Did you mean {close[0]!r}?" if close else ""
      raise FolderError(f'{path}: "things" names {name!r}, which is not one of "classes".{hint}')
  return tuple(names), tuple(sorted({names.index(n) for n in thing_names}))


def _read_image(path: pathlib.Path) -> np.ndarray:
  try:
    with Image.open(path) as image:
      return np.asarray(image.convert("RGB"))
  except (UnidentifiedImageError, OSError) as error:
    raise FolderError(
      f"{path} cannot be read as an image ({error}); replace or remove it."
    ) from error


def _read_mask(path: pathlib.Path, values: str = "class ids") -> np.ndarray:
  """A single-channel PNG's pixel values, which must be `values` (for the error)."""
  try:
    with Image.open(path) as mask:
      if mask.mode not in ("L", "P", "I", "I;16"):
        raise FolderError(
          f"{path} has mode {mask.mode}: masks must be single-channel PNGs whose pixel values are "
          f"{values} (mode L or P, or 16-bit I;16), not colours."
        )
      return np.asarray(mask)
  except (UnidentifiedImageError, OSError) as error:
    raise FolderError(
      f"{path} cannot be read as a mask ({error}); replace or remove it."
    ) from error


def _check_size(
  path: pathlib.Path, mask: np.ndarray, image_path: pathlib.Path, size: tuple
) -> None:
  if mask.shape[::-1] != size:
    raise FolderError(
      f"{path} is {mask.shape[1]}x{mask.shape[0]} but {image_path} is "
      f"{size[0]}x{size[1]} (width x height); a mask must match its image."
    )


class FolderSource(ImageFiles):
  """Random-access examples of one split folder, checked when opened; given `things` (thing class
  ids), it also reads `instances/` and adds `panoptic`. A bad example stops with its error, or
  with `on_bad_example="skip"` is left out and counted."""

  def __init__(
    self,
    split_dir: pathlib.Path,
    class_names: tuple[str, ...],
    ignore_index: int,
    things: tuple[int, ...] | None = None,
    on_bad_example: str = "error",
  ):
    images_dir, masks_dir = split_dir / "images", split_dir / "masks"
    for folder in (images_dir, masks_dir):
      if not folder.is_dir():
        raise FolderError(f"{folder} is not a folder; expected {split_dir}/images and /masks.")
    self._images = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not self._images:
      raise FolderError(f"{images_dir} has no images ({', '.join(IMAGE_SUFFIXES)}).")
    self._masks = [masks_dir / f"{p.stem}.png" for p in self._images]
    self._instances = None
    if things is not None:
      self._instances = [split_dir / "instances" / f"{p.stem}.png" for p in self._images]
    self._class_names, self._things, self._ignore_index = class_names, things, ignore_index
    bad: dict[int, str] = {}
    for index in tqdm(
      range(len(self._images)),
      desc=f"Checking {split_dir}",
      disable=len(self._images) < 200,
    ):
      try:
        self._check(index)
      except FolderError as error:
        if on_bad_example != "skip":
          raise
        bad[index] = str(error)
    if bad:
      self._skip(bad, split_dir)

  def _skip(self, bad: dict[int, str], split_dir: pathlib.Path) -> None:
    """Leaves the examples `bad` (index -> reason) out, saying how many and which."""
    if len(bad) == len(self._images):
      raise FolderError(
        f"Every one of the {len(bad)} examples of {split_dir} is bad; the first: "
        f"{next(iter(bad.values()))}"
      )
    keep = [i for i in range(len(self._images)) if i not in bad]
    self._images = [self._images[i] for i in keep]
    self._masks = [self._masks[i] for i in keep]
    if self._instances is not None:
      self._instances = [self._instances[i] for i in keep]
    shown = "\n  ".join(list(bad.values())[:5])
    print(
      f"Skipped {len(bad)} bad examples of {split_dir} (config.data.on_bad_example=skip), "
      f"{len(keep)} left; the first:\n  {shown}"
    )

  def _check(self, index: int) -> None:
    image_path, mask_path = self._images[index], self._masks[index]
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
    _check_size(mask_path, mask, image_path, image_size)
    num_classes = len(self._class_names)
    values = np.unique(mask)
    bad = values[(values >= num_classes) & (values != self._ignore_index)]
    if bad.size:
      raise FolderError(
        f"{mask_path} has label values {bad.tolist()[:10]} that are neither a class id "
        f"(0..{num_classes - 1}, from classes.json) nor ignore_index={self._ignore_index}."
      )
    if self._instances is not None:
      self._check_instances(index, image_size, mask)

  def _check_instances(self, index: int, image_size: tuple[int, int], mask: np.ndarray) -> None:
    image_path, path = self._images[index], self._instances[index]
    if not path.is_file():
      raise FolderError(
        f"{image_path} has no instance mask: expected {path} (a split with an instances/ folder "
        "needs one per image; 0 = no instance)."
      )
    instances = _read_mask(path, "instance ids").astype(np.int64)
    _check_size(path, instances, image_path, image_size)
    values = np.unique(instances)
    bad = values[(values < 0) | (values >= LABEL_DIVISOR)]
    if bad.size:
      raise FolderError(
        f"{path} has instance ids {bad.tolist()[:10]} outside 0..{LABEL_DIVISOR - 1}; number the "
        f"objects of an image 1..{LABEL_DIVISOR - 1} (0 = no instance)."
      )
    num_classes = len(self._class_names)
    labelled = (instances > 0) & (mask != self._ignore_index)
    # The sorted (id, class) pairs of the non-void instance pixels: an id on two classes repeats.
    pairs = np.unique(instances[labelled] * num_classes + mask[labelled])
    ids, classes = np.divmod(pairs, num_classes)
    repeated = ids[1:][ids[1:] == ids[:-1]]
    if repeated.size:
      names = [self._class_names[c] for c in classes[ids == repeated[0]]]
      raise FolderError(
        f"{path}: instance {repeated[0]} covers pixels of the classes {names} in "
        f"{self._masks[index]}; an instance must be one class: give each object its own id, or "
        "fix the masks."
      )
    on_stuff = ~np.isin(classes, self._things)
    if on_stuff.any():
      name = self._class_names[classes[on_stuff][0]]
      raise FolderError(
        f"{path}: instance {ids[on_stuff][0]} lies on {name!r}, a stuff class; add {name!r} to "
        '"things" in classes.json, or set those pixels to 0.'
      )

  def __getitem__(self, index: int) -> dict:
    semantic = _read_mask(self._masks[index]).astype(np.uint8)
    example = {"image": _read_image(self._images[index]), "semantic": semantic}
    if self._instances is not None:
      instances = _read_mask(self._instances[index], "instance ids").astype(np.int32)
      panoptic = semantic.astype(np.int32) * LABEL_DIVISOR + instances
      panoptic[semantic == self._ignore_index] = self._ignore_index * LABEL_DIVISOR
      example["panoptic"] = panoptic
    return example


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
  names, things = read_classes(root)
  if data_config.ignore_index < len(names):
    raise FolderError(
      f"config.data.ignore_index={data_config.ignore_index} is a class id of {root}/classes.json "
      f"({len(names)} classes); choose a value >= {len(names)}, such as 255."
    )
  if not (split_dir / "instances").is_dir():
    source = FolderSource(
      split_dir, names, data_config.ignore_index, on_bad_example=data_config.on_bad_example
    )
    return Dataset(source, class_names=names, cache_dir=str(root))
  if things is None:
    things = tuple(range(1, len(names)))
  stuff = tuple(c for c in range(len(names)) if c not in things)
  source = FolderSource(
    split_dir, names, data_config.ignore_index, things, on_bad_example=data_config.on_bad_example
  )
  return Dataset(source, class_names=names, things=things, stuff=stuff, cache_dir=str(root))

"""Pascal VOC 2012 segmentation and "VOC aug" (VOC 2012 plus SBD's labels), from the official
downloads.

Layout (`config.data.root`): the archives unpacked side by side,

    root/VOCdevkit/VOC2012/JPEGImages/<id>.jpg
    root/VOCdevkit/VOC2012/SegmentationClass/<id>.png       palette ("P") PNG: pixel = class id
                                                             0..20, 255 = boundary / void
    root/VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val}.txt   one image id per line
    root/benchmark_RELEASE/dataset/cls/<id>.mat              SBD: struct GTcls, field Segmentation
                                                             = u8[H,W] class ids 0..20
    root/benchmark_RELEASE/dataset/{train,val}.txt

VOCtrainval_11-May-2012.tar unpacks to VOCdevkit/; SBD's benchmark.tgz to benchmark_RELEASE/
(only `load_aug`'s train split reads it).

`load`: split "train" is VOC's train.txt (1,464 images), "validation" its val.txt (1,449).
`load_aug`: "train" is (VOC train ∪ SBD train ∪ SBD val) − VOC val, sorted (10,582 images);
"validation" is VOC's val.txt. An aug image is labelled by VOC's SegmentationClass PNG where VOC
has one for its id and by SBD's cls/<id>.mat otherwise: VOC's labels are the official ones and mark
object boundaries void (255), SBD's have no void. Images always come from VOC2012/JPEGImages.

Examples have `image` and `semantic` only: VOC's class PNGs have no instance ids, so the data sets
have no things or stuff. Every listed file is checked to exist when a split is opened.
"""

import pathlib

import numpy as np
import scipy.io
from PIL import Image, UnidentifiedImageError

from segjax.data.dataset import Dataset, ImageFiles
from segjax.errors import InputError

SPLITS = {"train": "train", "validation": "val"}
VOID = 255
VOC_ARCHIVE = "VOCtrainval_11-May-2012.tar"
VOC_URL = "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar"
SBD_ARCHIVE = "benchmark.tgz"
SBD_URL = (
  "https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/semantic_contours/"
  "benchmark.tgz"
)

CLASS_NAMES = (
  "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
  "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
  "train", "tvmonitor",
)  # fmt: skip


def color_map(n: int = 256) -> tuple[tuple[int, int, int], ...]:
  """The VOC devkit's `labelcolormap`: the bits of class id i, taken three at a time, fill red,
  green and blue from the most significant bit down."""
  colors = []
  for i in range(n):
    rgb = [0, 0, 0]
    for bit in range(8):
      for channel in range(3):
        rgb[channel] |= ((i >> (3 * bit + channel)) & 1) << (7 - bit)
    colors.append(tuple(rgb))
  return tuple(colors)


COLORS = color_map(len(CLASS_NAMES))


class VocError(InputError):
  """A file of the user's VOC 2012 or SBD copy is missing or unreadable."""


def _read_image(path: pathlib.Path) -> np.ndarray:
  try:
    with Image.open(path) as image:
      return np.asarray(image.convert("RGB"))
  except (UnidentifiedImageError, OSError) as error:
    raise VocError(f"{path} cannot be read as an image ({error}); unpack it again.") from error


def _read_png_label(path: pathlib.Path) -> np.ndarray:
  """A SegmentationClass PNG's class ids: u8[H,W]."""
  try:
    with Image.open(path) as label:
      if label.mode not in ("P", "L"):
        raise VocError(
          f"{path} has mode {label.mode}: VOC labels are palette PNGs whose pixel values are class "
          "ids (0..20, 255 void), not the colour rendering; use the PNGs of "
          f"VOCdevkit/VOC2012/SegmentationClass from {VOC_ARCHIVE} as they are."
        )
      return np.asarray(label)
  except (UnidentifiedImageError, OSError) as error:
    raise VocError(f"{path} cannot be read as a label PNG ({error}); unpack it again.") from error


def read_sbd_label(path: pathlib.Path) -> np.ndarray:
  """The class ids of SBD's cls/<id>.mat (`GTcls.Segmentation`): u8[H,W]."""
  try:
    # squeeze_me=False keeps a 1-pixel-high map 2-D; GTcls is then a 1x1 array of the struct.
    content = scipy.io.loadmat(path, squeeze_me=False, struct_as_record=False)
  except (OSError, ValueError, TypeError, NotImplementedError, scipy.io.matlab.MatReadError) as e:
    raise VocError(f"{path} cannot be read as a MATLAB file ({e}); unpack it again.") from e
  gt = content.get("GTcls")
  if isinstance(gt, np.ndarray) and gt.size == 1:
    gt = gt.flat[0]
  segmentation = getattr(gt, "Segmentation", None)
  if segmentation is None:
    raise VocError(
      f"{path} has no GTcls.Segmentation (it has {sorted(k for k in content if k[0] != '_')}): "
      f"use SBD's dataset/cls/<id>.mat files from {SBD_ARCHIVE} (not inst/ ones)."
    )
  segmentation = np.asarray(segmentation)
  if (
    segmentation.ndim != 2
    or not np.issubdtype(segmentation.dtype, np.number)
    or (segmentation.size and (segmentation.min() < 0 or segmentation.max() > VOID))
  ):
    raise VocError(
      f"{path}: GTcls.Segmentation is {segmentation.dtype}{list(segmentation.shape)}; expected a "
      "2-D map of class ids 0..20."
    )
  return segmentation.astype(np.uint8)


class VocSource(ImageFiles):
  """Random-access examples: image `images[i]` labelled by `labels[i]`, a SegmentationClass PNG
  or an SBD .mat."""

  def __init__(self, images: list[pathlib.Path], labels: list[pathlib.Path]):
    self._images, self._labels = images, labels

  def __getitem__(self, index: int) -> dict:
    """`{"image": u8[H,W,3], "semantic": u8[H,W]}`."""
    image_path, label_path = self._images[index], self._labels[index]
    image = _read_image(image_path)
    if label_path.suffix == ".mat":
      semantic = read_sbd_label(label_path)
    else:
      semantic = _read_png_label(label_path)
    if semantic.shape != image.shape[:2]:
      raise VocError(
        f"{label_path} is {semantic.shape[1]}x{semantic.shape[0]} but {image_path} is "
        f"{image.shape[1]}x{image.shape[0]} (width x height); a label must match its image."
      )
    return {"image": image, "semantic": semantic}


def _root(data_config) -> pathlib.Path:
  if not data_config.root:
    raise VocError(
      "config.data.root is empty: set it to the folder that holds VOCdevkit/ (and, for VOC aug, "
      "benchmark_RELEASE/)."
    )
  if data_config.ignore_index != VOID:
    raise VocError(f"config.data.ignore_index={data_config.ignore_index}: VOC marks void with 255.")
  root = pathlib.Path(data_config.root).expanduser()
  if not root.is_dir():
    raise VocError(f"config.data.root={data_config.root!r} is not a folder.")
  return root


def _voc_dir(root: pathlib.Path) -> pathlib.Path:
  voc = root / "VOCdevkit" / "VOC2012"
  if not voc.is_dir():
    hint = ""
    if (root / "JPEGImages").is_dir() or (root / "VOC2012").is_dir():
      hint = " (config.data.root must be the folder above VOCdevkit/)"
    raise VocError(
      f"{voc} is missing{hint}: download {VOC_ARCHIVE} ({VOC_URL}) and unpack it into {root}."
    )
  return voc


def _sbd_dir(root: pathlib.Path) -> pathlib.Path:
  sbd = root / "benchmark_RELEASE" / "dataset"
  if not sbd.is_dir():
    raise VocError(
      f"{sbd} is missing: download SBD's {SBD_ARCHIVE} from the Berkeley Semantic Boundaries "
      f"Dataset page ({SBD_URL}) and unpack it into {root}."
    )
  return sbd


def _read_ids(path: pathlib.Path, archive: str) -> list[str]:
  if not path.is_file():
    raise VocError(f"{path} is missing: unpack {archive} completely.")
  ids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
  if not ids:
    raise VocError(f"{path} lists no image ids: unpack {archive} again.")
  return ids


def _check_listed(path: pathlib.Path, list_file: pathlib.Path, archive: str) -> None:
  if not path.is_file():
    raise VocError(f"{path} is missing, listed in {list_file}: unpack {archive} completely.")


def _check_split(split: str, name: str) -> None:
  if split not in SPLITS:
    raise VocError(f"{name} split {split!r}: use one of {list(SPLITS)}.")


def _voc_source(voc: pathlib.Path, split: str) -> VocSource:
  """VOC's own list `split` ("train", "val"), labelled by its SegmentationClass PNGs."""
  list_file = voc / "ImageSets" / "Segmentation" / f"{split}.txt"
  images, labels = [], []
  for image_id in _read_ids(list_file, VOC_ARCHIVE):
    image = voc / "JPEGImages" / f"{image_id}.jpg"
    label = voc / "SegmentationClass" / f"{image_id}.png"
    _check_listed(image, list_file, VOC_ARCHIVE)
    _check_listed(label, list_file, VOC_ARCHIVE)
    images.append(image)
    labels.append(label)
  return VocSource(images, labels)


def _dataset(source: VocSource, root: pathlib.Path) -> Dataset:
  return Dataset(source, class_names=CLASS_NAMES, colors=COLORS, cache_dir=str(root))


def load(data_config, split: str) -> Dataset:
  """VOC 2012 segmentation from `data_config.root` for `split` ("train", "validation")."""
  _check_split(split, "VOC")
  root = _root(data_config)
  return _dataset(_voc_source(_voc_dir(root), SPLITS[split]), root)


def load_aug(data_config, split: str) -> Dataset:
  """VOC aug from `data_config.root` for `split`: "train" is VOC's and SBD's train and val images
  less VOC's val ones, "validation" is VOC's val (see the module docstring)."""
  _check_split(split, "VOC aug")
  root = _root(data_config)
  voc = _voc_dir(root)
  if split == "validation":
    return _dataset(_voc_source(voc, "val"), root)
  sbd = _sbd_dir(root)
  voc_lists = voc / "ImageSets" / "Segmentation"
  val_ids = set(_read_ids(voc_lists / "val.txt", VOC_ARCHIVE))
  list_of: dict[str, pathlib.Path] = {}  # id -> the first list that names it, for errors
  for list_file, archive in (
    (voc_lists / "train.txt", VOC_ARCHIVE),
    (sbd / "train.txt", SBD_ARCHIVE),
    (sbd / "val.txt", SBD_ARCHIVE),
  ):
    for image_id in _read_ids(list_file, archive):
      list_of.setdefault(image_id, list_file)
  images, labels = [], []
  for image_id in sorted(set(list_of) - val_ids):
    image = voc / "JPEGImages" / f"{image_id}.jpg"
    _check_listed(image, list_of[image_id], VOC_ARCHIVE)
    label = voc / "SegmentationClass" / f"{image_id}.png"
    if not label.is_file():
      label = sbd / "cls" / f"{image_id}.mat"
      if not label.is_file():
        raise VocError(
          f"{image_id}, listed in {list_of[image_id]}, has neither VOC's "
          f"{voc / 'SegmentationClass' / f'{image_id}.png'} nor SBD's {label}: unpack "
          f"{VOC_ARCHIVE} and {SBD_ARCHIVE} completely."
        )
    images.append(image)
    labels.append(label)
  return _dataset(VocSource(images, labels), root)

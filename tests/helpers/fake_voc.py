"""A tiny copy of the official VOC 2012 and SBD layouts (VOCdevkit/ and benchmark_RELEASE/), made
by the tests themselves."""

import pathlib

import numpy as np
import scipy.io
import scipy.sparse
from PIL import Image

from segjax.data.builders.voc import color_map


def voc_label(size: tuple[int, int] = (6, 8)) -> np.ndarray:
  """The class ids of every VOC SegmentationClass PNG written: 0..20 in raster order, the last
  row 255 (void)."""
  label = (np.arange(size[0] * size[1]) % 21).reshape(size).astype(np.uint8)
  label[-1] = 255
  return label


def sbd_label(size: tuple[int, int] = (6, 8)) -> np.ndarray:
  """The class ids of every SBD cls/<id>.mat written: row r is class 3r + 2 (no void)."""
  return np.repeat(np.arange(size[0])[:, None] * 3 + 2, size[1], axis=1).astype(np.uint8)


def write_sbd_mat(path: pathlib.Path, segmentation: np.ndarray) -> None:
  """SBD's cls/<id>.mat: struct GTcls with the label map, one sparse boundary map per class and
  the classes present."""
  boundaries = np.empty((20, 1), object)
  for k in range(20):
    boundaries[k, 0] = scipy.sparse.csc_matrix(segmentation == k + 1)
  present = np.unique(segmentation[(segmentation > 0) & (segmentation < 255)])
  scipy.io.savemat(
    path,
    {
      "GTcls": {
        "Segmentation": segmentation,
        "Boundaries": boundaries,
        "CategoriesPresent": present.astype(np.uint8)[:, None],
      }
    },
  )


def write_voc(
  root: pathlib.Path,
  voc_train: tuple[str, ...] = ("a", "b"),
  voc_val: tuple[str, ...] = ("c",),
  sbd_train: tuple[str, ...] | None = ("b", "d", "c"),
  sbd_val: tuple[str, ...] = ("e",),
  size: tuple[int, int] = (6, 8),
) -> pathlib.Path:
  """A JPEG for every id listed, a palette PNG (`voc_label`) for each VOC id and an SBD .mat
  (`sbd_label`) for each SBD id; `sbd_train=None` writes no benchmark_RELEASE/."""
  rng = np.random.default_rng(0)
  voc = root / "VOCdevkit" / "VOC2012"
  lists, images, labels = (
    voc / "ImageSets" / "Segmentation",
    voc / "JPEGImages",
    voc / "SegmentationClass",
  )
  for folder in (lists, images, labels):
    folder.mkdir(parents=True)
  palette = [value for color in color_map(256) for value in color]
  sbd_ids = () if sbd_train is None else (*sbd_train, *sbd_val)
  for image_id in sorted({*voc_train, *voc_val, *sbd_ids}):
    image = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
    Image.fromarray(image).save(images / f"{image_id}.jpg")
  for image_id in (*voc_train, *voc_val):
    label = Image.fromarray(voc_label(size))
    label.putpalette(palette)  # an "L" image with a palette becomes "P", as VOC's PNGs are
    label.save(labels / f"{image_id}.png")
  (lists / "train.txt").write_text("".join(f"{i}\n" for i in voc_train))
  (lists / "val.txt").write_text("".join(f"{i}\n" for i in voc_val))
  if sbd_train is not None:
    sbd = root / "benchmark_RELEASE" / "dataset"
    (sbd / "cls").mkdir(parents=True)
    for image_id in sbd_ids:
      write_sbd_mat(sbd / "cls" / f"{image_id}.mat", sbd_label(size))
    (sbd / "train.txt").write_text("".join(f"{i}\n" for i in sbd_train))
    (sbd / "val.txt").write_text("".join(f"{i}\n" for i in sbd_val))
  return root

"""`segjax data prepare NAME --manual_dir DIR`: a data set the user downloaded, read once from its
official files and written as array_record, then read back with random access.

The build goes through the same reader that `config.data.root=DIR` uses (the label remapping of
each data set lives there, in one table), so a prepared copy holds exactly the examples that
reading the files gives: the image (the original JPEG/PNG bytes where PIL reads them as RGB, a
PNG otherwise), `semantic` as a PNG and, where the data set has instances, `panoptic` as a
COCO-panoptic RGB PNG (`id = R + 256 G + 256² B`). Class names, colours, things and stuff travel
in the build's metadata, so training needs no access to the original files.

A build lives in `<tfds_dir>/segjax_data/<name>/<version>`; `config.data.root=""` reads it.
"""

import concurrent.futures
import io
import pathlib

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image, UnidentifiedImageError

from segjax.data.builders import ade20k, cityscapes, coco, coco_panoptic, pets, voc
from segjax.data.builders.tfds_source import TfdsSource
from segjax.data.coco_panoptic import id_to_rgb, rgb_to_id
from segjax.data.dataset import Dataset
from segjax.errors import InputError

# name -> (reader of the official files, whether its examples have `panoptic`, where to get them).
READERS = {
  "cityscapes": (cityscapes.load, True, "leftImg8bit_trainvaltest.zip + gtFine_trainvaltest.zip"),
  "ade20k": (ade20k.load, False, "ADEChallengeData2016.zip"),
  "voc": (voc.load, False, "VOCtrainval_11-May-2012.tar"),
  "voc_aug": (voc.load_aug, False, "VOCtrainval_11-May-2012.tar + SBD's benchmark.tgz"),
  "pets": (pets.load, False, "images.tar.gz + annotations.tar.gz"),
  "coco": (coco.load, True, "train2017.zip, val2017.zip, annotations_trainval2017.zip"),
  "coco_panoptic": (
    coco_panoptic.load,
    True,
    "train2017.zip, val2017.zip, panoptic_annotations_trainval2017.zip",
  ),
}
SPLITS = ("train", "validation")
# Images decoded in parallel while a split is written (PIL releases the GIL while decoding).
DECODE_THREADS = 8


def _png(array: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, format="PNG")
  return buffer.getvalue()


def _image_bytes(source, index: int, image: np.ndarray) -> bytes:
  """The image file's own bytes where they decode to `image` as they are (an RGB JPEG or PNG of
  the same size), so that nothing is re-encoded; a PNG of `image` otherwise."""
  path = source.image_file(index) if hasattr(source, "image_file") else None
  if path is not None:
    try:
      with Image.open(path) as file:
        as_is = file.format in ("JPEG", "PNG") and file.mode == "RGB"
        as_is = as_is and file.size == (image.shape[1], image.shape[0])
    except (UnidentifiedImageError, OSError):
      as_is = False
    if as_is:
      return pathlib.Path(path).read_bytes()
  return _png(image)


def _encode(source, index: int, panoptic: bool) -> dict:
  example = source[index]
  record = {
    "image": _image_bytes(source, index, example["image"]),
    "semantic": _png(example["semantic"].astype(np.uint8)),
  }
  if panoptic:
    record["panoptic"] = _png(id_to_rgb(example["panoptic"]))
  return record


class SegjaxDataConfig(tfds.core.BuilderConfig):
  """One data set of `READERS`."""

  def __init__(self, *, name: str, panoptic: bool):
    super().__init__(name=name, description=f"{name}, prepared from its official files")
    self.panoptic = panoptic


class SegjaxData(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """The data sets of `READERS`, built from the official files that `data_config.root` names.

  Not in TFDS's registry: the name would clash with TFDS's own catalog builders of these sets.
  """

  # 1.0.0: first release.
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}  # noqa: RUF012 - TFDS declares it a dict
  BUILDER_CONFIGS = tuple(
    SegjaxDataConfig(name=name, panoptic=panoptic) for name, (_, panoptic, _) in READERS.items()
  )

  def __init__(self, *, data_config=None, **kwargs):
    self._data_config = data_config  # only for building: the reader's config, root included
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    features = {
      "image": tfds.features.Image(shape=(None, None, 3)),
      "semantic": tfds.features.Image(shape=(None, None, 1)),
    }
    if self.builder_config.panoptic:
      features["panoptic"] = tfds.features.Image(shape=(None, None, 3))
    return tfds.core.DatasetInfo(
      builder=self,
      description=__doc__,
      features=tfds.features.FeaturesDict(features),
      metadata=tfds.core.MetadataDict(),
      disable_shuffling=True,  # example i of the build is example i of the files
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # the files are the user's: nothing is downloaded
    read = READERS[self.builder_config.name][0]
    datasets = {split: read(self._data_config, split) for split in SPLITS}
    first = datasets["train"]
    self.info.metadata.update(
      class_names=list(first.class_names),
      things=list(first.things),
      stuff=list(first.stuff),
      colors=[list(c) for c in first.colors],
      category_ids=list(first.category_ids),
      ignore_index=self._data_config.ignore_index,
      root=str(pathlib.Path(self._data_config.root).expanduser().resolve()),
    )
    return {split: self._generate_examples(d.source) for split, d in datasets.items()}

  def _generate_examples(self, source):
    panoptic = self.builder_config.panoptic
    with concurrent.futures.ThreadPoolExecutor(DECODE_THREADS) as pool:
      records = pool.map(lambda i: _encode(source, i, panoptic), range(len(source)))
      yield from enumerate(records)


def builder(name: str, tfds_dir: str, data_config=None) -> SegjaxData:
  """The builder of data set `name` in `tfds_dir` ("" = TFDS's default data dir)."""
  if name not in READERS:
    raise InputError(f"{name!r} cannot be prepared; the data sets that can: {sorted(READERS)}.")
  return SegjaxData(
    config=name, data_dir=tfds_dir or None, data_config=data_config, file_format="array_record"
  )


def prepare(name: str, manual_dir: str, tfds_dir: str = "", data_config=None) -> SegjaxData:
  """Reads `manual_dir` (the official files of `name`, unpacked) and writes both splits into
  `tfds_dir`, with a progress bar per split; returns the builder.

  `data_config` (default `base_config().data`) gives the reader's other settings
  (`ignore_index`). A build that exists is kept: delete its folder to build it again.

  Raises:
    InputError: an unknown name, or a missing or unreadable file of the download, named with the
      archive it comes from.
  """
  from segjax.config import base_config

  data_config = (data_config or base_config().data).copy_and_resolve_references()
  data_config.name, data_config.root = name, str(manual_dir)
  if not manual_dir or not pathlib.Path(manual_dir).expanduser().is_dir():
    files = READERS[name][2] if name in READERS else "the official files"
    raise InputError(
      f"--manual_dir={manual_dir!r} is not a folder: unpack {files} into one and give its path."
    )
  build = builder(name, tfds_dir, data_config)
  if build.is_prepared():
    print(f"{name} is already prepared in {build.data_dir}; delete that folder to rebuild it.")
    return build
  print(f"Preparing {name} from {manual_dir} into {build.data_dir}.")
  build.download_and_prepare(file_format="array_record")
  splits = ", ".join(f"{s} {build.info.splits[s].num_examples:,}" for s in SPLITS)
  print(f"Prepared {name}: {splits} examples in {build.data_dir}.")
  return build


class PreparedSource(TfdsSource):
  """A prepared split: `panoptic` decoded from its RGB PNG."""

  def __getitem__(self, index: int) -> dict:
    example = super().__getitem__(index)
    if "panoptic" in example:
      example["panoptic"] = rgb_to_id(example["panoptic"])
    return example


def load(data_config, split: str) -> Dataset:
  """The prepared copy of `data_config.name` in `data_config.tfds_dir`, for `split`.

  Raises:
    InputError: it has not been prepared (saying how), or with another `ignore_index`.
  """
  name = data_config.name
  build = builder(name, data_config.tfds_dir)
  if not build.is_prepared():
    raise InputError(
      f"config.data.root is empty and {name} is not prepared in {build.data_dir}: run "
      f"`segjax data prepare {name} --manual_dir=DIR` once (DIR: {READERS[name][2]} unpacked"
      f"{', with --data_dir=' + data_config.tfds_dir if data_config.tfds_dir else ''}), or set "
      "config.data.root=DIR to read the files directly."
    )
  meta = build.info.metadata
  if meta["ignore_index"] != data_config.ignore_index:
    raise InputError(
      f"config.data.ignore_index={data_config.ignore_index}, but {name} was prepared in "
      f"{build.data_dir} with void pixels {meta['ignore_index']}: set that value, or prepare it "
      "again into another --data_dir."
    )
  return Dataset(
    PreparedSource(build, split),
    class_names=tuple(meta["class_names"]),
    things=tuple(meta["things"]),
    stuff=tuple(meta["stuff"]),
    cache_dir=build.data_dir,
    category_ids=tuple(meta["category_ids"]),
    colors=tuple(tuple(c) for c in meta["colors"]),
  )

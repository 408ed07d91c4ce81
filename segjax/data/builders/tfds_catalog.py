"""`config.data.name = "tfds:NAME"`: any TFDS data set with an image and a segmentation mask.

NAME is what `tfds.builder` takes: `oxford_iiit_pet`, `oxford_iiit_pet:4.0.0`, `foo/bar:1.0.0`.
The data set must already be built in `config.data.tfds_dir` as array_record (nothing is downloaded
at run time); it is read through `builder.as_data_source(split)`, random access, no TensorFlow.

Keys of `config.data` it reads:
  image_key: the image feature, u8[H,W,3] or u8[H,W,1] (grey, repeated to three channels).
  label_key: the mask feature, integers [H,W] or [H,W,1] with values in 0..255.
  class_names: one name per class id after the offset; required.
  label_offset: subtracted from mask values; values below it become `ignore_index` (1 for masks
    numbered from 1 where 0 means unlabelled, such as the Oxford-IIIT Pet trimaps).
  ignore_index: the void label; a pixel that holds it before the shift stays void. Values at or
    above len(class_names) after the shift are kept as they are, for the losses' own rules.
  train_split / eval.split (the `split` argument): a split of the data set, TFDS slices allowed
    ("train[:90%]").
"""

import re
from collections.abc import Sequence

import numpy as np
import tensorflow_datasets as tfds

from segjax.data.dataset import Dataset, to_uint8_labels
from segjax.errors import InputError

PREFIX = "tfds:"
# Keys of a builder's metadata that may hold its class names.
_METADATA_NAME_KEYS = ("class_names", "names", "classes", "labels", "label_names")


def load(data_config, split: str) -> Dataset:
  """Opens split `split` of the prepared TFDS data set `data_config.name` ("tfds:NAME").

  Returns:
    A `Dataset` whose examples are `{"image": u8[H,W,3], "semantic": u8[H,W]}`, with
    `class_names=tuple(data_config.class_names)` and `cache_dir` the builder's data dir.

  Raises:
    InputError: the name is unknown, the data set is not built (or not as array_record), a key,
      split or class list does not fit the data set; each message says what to set or run.
  """
  name = tfds_name(data_config.name)
  data_dir = data_config.tfds_dir or None
  builder = _open_builder(name, data_dir)
  _check_prepared(builder, name, data_config)
  features = builder.info.features
  image_key, label_key = data_config.image_key, data_config.label_key
  _check_feature(features, "image_key", image_key, name)
  _check_feature(features, "label_key", label_key, name)
  _check_image_feature(features[image_key], image_key)
  _check_label_feature(features[label_key], label_key)
  class_names = _class_names(data_config, builder, name)
  table = label_table(data_config.label_offset, data_config.ignore_index, len(class_names))
  _check_split(builder, split, name)
  source = TfdsCatalogSource(
    builder.as_data_source(split=split), image_key=image_key, label_key=label_key, table=table
  )
  return Dataset(source, class_names=class_names, cache_dir=builder.data_dir)


def tfds_name(name: str) -> str:
  """The TFDS name of `config.data.name`: "tfds:oxford_iiit_pet:4.0.0" -> "oxford_iiit_pet:4.0.0".

  Raises:
    InputError: `name` does not start with "tfds:" or names nothing after it.
  """
  if not name.startswith(PREFIX) or not name[len(PREFIX) :].strip():
    raise InputError(
      f"config.data.name={name!r} is not a TFDS data set name: write 'tfds:NAME', e.g. "
      "'tfds:oxford_iiit_pet' or 'tfds:oxford_iiit_pet:4.0.0'."
    )
  return name[len(PREFIX) :].strip()


def label_table(offset: int, ignore_index: int, num_classes: int) -> np.ndarray:
  """The u8[256] lookup table from a mask value to a segjax label.

  Value v becomes v - offset; values below `offset` become `ignore_index`, and `ignore_index`
  itself stays `ignore_index`. Values at or above `num_classes` after the shift are kept.

  Raises:
    InputError: `offset` is not in 0..255, `ignore_index` is not in 0..255 (segjax labels are
      8-bit) or is a class id (below `num_classes`).
  """
  if not (isinstance(offset, int | np.integer) and 0 <= offset <= 255):
    raise InputError(
      f"config.data.label_offset={offset!r} must be an integer in 0..255: the mask value of the "
      "first class (0, or 1 where 0 means unlabelled)."
    )
  if not (isinstance(ignore_index, int | np.integer) and 0 <= ignore_index <= 255):
    raise InputError(
      f"config.data.ignore_index={ignore_index!r} must be an integer in 0..255 for a tfds: data "
      "set: segjax labels are 8-bit (255 is the usual void label)."
    )
  if ignore_index < num_classes:
    raise InputError(
      f"config.data.ignore_index={ignore_index} is a class id: config.data.class_names has "
      f"{num_classes} names (ids 0..{num_classes - 1}); set ignore_index to at least "
      f"{num_classes}, e.g. 255."
    )
  table = np.arange(256, dtype=np.int64) - offset
  table[:offset] = ignore_index
  table[ignore_index] = ignore_index
  return table.astype(np.uint8)


class TfdsCatalogSource:
  """`source[i]`: example i of a TFDS data source as `{"image": u8[H,W,3], "semantic": u8[H,W]}`.

  Attributes:
    image_key, label_key: the TFDS features read.
    table: u8[256], mask value -> segjax label (`label_table`).
  """

  def __init__(self, source: Sequence, *, image_key: str, label_key: str, table: np.ndarray):
    self._source = source
    self.image_key, self.label_key, self.table = image_key, label_key, table

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index: int) -> dict:
    raw = self._source[index]
    image = np.asarray(raw[self.image_key])
    if image.ndim == 2:
      image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3):
      raise InputError(
        f"Example {index}: feature {self.image_key!r} (config.data.image_key) has shape "
        f"{image.shape}; segjax needs [H, W, 3] or [H, W, 1] images."
      )
    if image.shape[-1] == 1:
      image = np.repeat(image, 3, axis=-1)
    label = to_uint8_labels(np.asarray(raw[self.label_key]))
    if label.ndim != 2:
      raise InputError(
        f"Example {index}: feature {self.label_key!r} (config.data.label_key) has shape "
        f"{np.shape(raw[self.label_key])}; segjax needs a mask of [H, W] or [H, W, 1]."
      )
    if label.shape != image.shape[:2]:
      raise InputError(
        f"Example {index}: mask {self.label_key!r} is {label.shape[0]}x{label.shape[1]} but image "
        f"{self.image_key!r} is {image.shape[0]}x{image.shape[1]}; they must be the same size."
      )
    return {"image": image, "semantic": self.table[_to_uint8(label, self.label_key, index)]}


def _to_uint8(label: np.ndarray, key: str, index: int) -> np.ndarray:
  if label.dtype == np.uint8:
    return label
  if label.dtype == np.bool_:
    return label.astype(np.uint8)
  if label.size and (label.min() < 0 or label.max() > 255):
    raise InputError(
      f"Example {index}: mask {key!r} (config.data.label_key) is {label.dtype} with values "
      f"{label.min()}..{label.max()}; segjax labels are 8-bit (0..255), so this data set's "
      "masks cannot be read as they are."
    )
  return label.astype(np.uint8)


def _open_builder(name: str, data_dir: str | None) -> tfds.core.DatasetBuilder:
  try:
    return tfds.builder(name, data_dir=data_dir)
  except tfds.core.DatasetNotFoundError as error:
    raise InputError(
      f"config.data.name='tfds:{name}': TFDS knows no data set {name!r} (looked in "
      f"{data_dir or 'the default TFDS data dir'}). TFDS says: {_without_list(str(error))}"
    ) from error
  except (ValueError, AssertionError) as error:
    raise InputError(
      f"config.data.name='tfds:{name}': TFDS cannot open it ({error}). Check the config and "
      "version after the name (NAME/CONFIG:VERSION)."
    ) from error


def _without_list(message: str) -> str:
  """TFDS's not-found message without its list of every registered data set."""
  return re.sub(r"Available datasets:\n(\t- [^\n]*\n)+", "", message).strip()


def _check_prepared(builder: tfds.core.DatasetBuilder, name: str, data_config) -> None:
  if not builder.is_prepared():
    where = data_config.tfds_dir or "the default TFDS data dir (config.data.tfds_dir is empty)"
    flag = f" --data_dir={data_config.tfds_dir}" if data_config.tfds_dir else ""
    raise InputError(
      f"config.data.name='tfds:{name}' is not built: looked in {builder.data_dir} ({where}), "
      "and segjax downloads nothing at run time. Build it first, as array_record for random "
      f"access: `tfds build {name}{flag} --file_format=array_record` (TFDS's command line), or "
      f"in Python `tfds.builder({name!r}, data_dir=...).download_and_prepare("
      "file_format='array_record')`; or set config.data.tfds_dir to where it is built."
    )
  random_access = tfds.core.file_adapters.FileFormat.with_random_access()
  formats = builder.info.available_file_formats()
  if not formats & random_access:
    built = ", ".join(sorted(f.value for f in formats)) or "an unknown format"
    raise InputError(
      f"config.data.name='tfds:{name}' is built in {builder.data_dir} as {built}, which TFDS "
      "cannot read by random access. Rebuild it as array_record: "
      f"`tfds build {name} --data_dir=... --file_format=array_record`, or download_and_prepare("
      'file_format="array_record"), into another data dir or after deleting this one.'
    )


def _check_feature(features, config_key: str, key: str, name: str) -> None:
  if key not in features:
    raise InputError(
      f"config.data.{config_key}={key!r} is not a feature of tfds:{name}; it has "
      f"{sorted(features)}: set config.data.{config_key} to one of them."
    )


def _check_image_feature(feature, key: str) -> None:
  shape, dtype = getattr(feature, "shape", None), getattr(feature, "np_dtype", None)
  if not (isinstance(shape, tuple) and isinstance(dtype, type | np.dtype)) or (
    np.dtype(dtype) != np.uint8
  ):
    raise InputError(
      f"config.data.image_key={key!r} is {feature!r}, not an image of u8[H, W, 3] or "
      "u8[H, W, 1]; set it to the data set's image feature."
    )
  if len(shape) != 3 or shape[-1] not in (1, 3, None):
    raise InputError(
      f"config.data.image_key={key!r} has shape {shape}; segjax needs [H, W, 3] or [H, W, 1]."
    )


def _check_label_feature(feature, key: str) -> None:
  shape, dtype = getattr(feature, "shape", None), getattr(feature, "np_dtype", None)
  if not isinstance(shape, tuple) or not isinstance(dtype, type | np.dtype):
    raise InputError(
      f"config.data.label_key={key!r} is {feature!r}, not a segmentation mask; set it to the "
      "data set's mask feature ([H, W] or [H, W, 1] of class ids)."
    )
  dtype = np.dtype(dtype)
  if not (np.issubdtype(dtype, np.integer) or dtype == np.bool_):
    raise InputError(
      f"config.data.label_key={key!r} holds {dtype} values; a mask needs integer class ids."
    )
  if not (len(shape) == 2 or (len(shape) == 3 and shape[-1] in (1, None))):
    raise InputError(
      f"config.data.label_key={key!r} has shape {shape}; a mask needs [H, W] or [H, W, 1]."
    )


def _class_names(data_config, builder, name: str) -> tuple[str, ...]:
  names = tuple(data_config.class_names)
  if not names:
    hint = " The data set does not name them: see its documentation."
    found = _names_found(builder, data_config.label_key)
    if found:
      where, found_names = found
      offset = data_config.label_offset
      hint = f" {where} names {len(found_names)} classes: {list(found_names)}."
      if offset:
        hint += (
          f" Where they name mask values, with label_offset={offset} that is "
          f"class_names={found_names[offset:]}."
        )
    raise InputError(
      f"config.data.class_names is empty: tfds:{name} needs one name per class id (mask value "
      f"minus config.data.label_offset): set config.data.class_names=(...), e.g. "
      f"('background', 'cat').{hint}"
    )
  if not all(isinstance(n, str) and n for n in names):
    raise InputError(
      f"config.data.class_names={names!r} must be non-empty strings, one per class id."
    )
  return names


def _names_found(builder, label_key: str) -> tuple[str, tuple[str, ...]] | None:
  """Where the data set names its mask classes, and the names: a labelled feature or metadata."""
  names = getattr(builder.info.features[label_key], "names", None)
  if names:
    return f"Its feature {label_key!r}", tuple(names)
  metadata = builder.info.metadata or {}
  for key in _METADATA_NAME_KEYS:
    value = metadata.get(key)
    if isinstance(value, list | tuple) and value and all(isinstance(n, str) for n in value):
      return f"Its metadata[{key!r}]", tuple(value)
  return None


def _check_split(builder, split: str, name: str) -> None:
  splits = sorted(builder.info.splits)
  example = "test" if "test" in splits else (splits or ["test"])[-1]
  # "train[:90%]+test" reads the named splits; check each base name.
  for part in split.split("+"):
    base = part.split("[", 1)[0].strip()
    if base not in splits:
      raise InputError(
        f"Split {split!r} is not in tfds:{name}, which has {splits}: set config.data.train_split "
        "(training) and config.eval.split (evaluation) to its splits, e.g. "
        f"config.eval.split={example!r}; TFDS slices such as 'train[:90%]' work too."
      )

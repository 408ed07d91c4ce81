"""The common shape of every data set: a random-access source of examples plus its class list."""

import dataclasses
import pathlib
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np


class Source(Protocol):
  """Random access to examples: `source[i]` is a dict of numpy arrays (see `Dataset`).

  Sources that read a user's files also have `image_file(i) -> pathlib.Path`, the file that
  example i's image comes from: `segjax data prepare` copies its bytes rather than re-encoding.
  """

  def __len__(self) -> int: ...

  def __getitem__(self, index: int) -> dict[str, Any]: ...


class ImageFiles:
  """The part shared by sources that read example i's image from the file `self._images[i]`."""

  _images: list[pathlib.Path]

  def __len__(self) -> int:
    return len(self._images)

  def example_name(self, index: int) -> str:
    return str(self._images[index])

  def image_file(self, index: int) -> pathlib.Path:
    return self._images[index]


@dataclasses.dataclass(frozen=True)
class Dataset:
  """A split of a data set.

  Examples are dicts with `image: u8[H,W,3]` and `semantic: u8[H,W]` (class ids, `ignore_index`
  for void) and, where the data set has them, `panoptic: i32[H,W]` (class * 1000 + instance).

  Attributes:
    source: random-access examples.
    class_names: one name per class id.
    things: ids of the classes that have instances.
    stuff: ids of the classes that do not.
    cache_dir: where statistics of the data (class pixel counts) may be cached; "" for nowhere.
    category_ids: the data set's own id of each class (COCO's category ids), for exports in its
      format; () where it has none.
    colors: the data set's RGB colour of each class (Cityscapes' label colours), for overlays;
      () for segjax's palette.
  """

  source: Source
  class_names: tuple[str, ...]
  things: tuple[int, ...] = ()
  stuff: tuple[int, ...] = ()
  cache_dir: str = ""
  category_ids: tuple[int, ...] = ()
  colors: tuple[tuple[int, int, int], ...] = ()

  @property
  def num_classes(self) -> int:
    return len(self.class_names)


def to_uint8_labels(array: np.ndarray) -> np.ndarray:
  """Drops a trailing channel axis of a decoded label image: u8[H,W,1] -> u8[H,W]."""
  return array[..., 0] if array.ndim == 3 else array


def select(example: dict[str, Any], fields: Sequence[str]) -> dict[str, Any]:
  """Keeps the fields a task reads, so that nothing else is augmented, batched or sent."""
  missing = [f for f in fields if f not in example]
  if missing:
    raise KeyError(f"The data set's examples have no {missing}; they have {sorted(example)}.")
  return {f: example[f] for f in fields}

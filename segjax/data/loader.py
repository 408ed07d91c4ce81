"""Grain pipelines: a seeded, sharded, augmented, checkpointable train stream, and eval batches.

The train stream is one global sequence of shuffled, augmented examples, the same for any number
of hosts: cut into per-host sub-batches, host p of P takes sub-batches p, p+P, ..., which are rows
p*b..(p+1)*b-1 of each global batch, the rows its devices hold. Augmentation draws from the seed
and the example's global position, so one host with four devices and two hosts with two see the
same batches. The stream is a random-access `MapDataset`, so its position is a plain index: the
iterator state saved with a checkpoint restores the exact same batches. Eval batches: every host
reads its own slice of the split (`index % process_count == process_index`).
"""

import functools
import math
from collections.abc import Callable, Iterator, Sequence

import grain
import jax
import numpy as np

from segjax.data import transforms
from segjax.data.dataset import Dataset, select


def _per_host(global_batch: int) -> int:
  if global_batch % jax.process_count():
    raise ValueError(
      f"Batch size {global_batch} must be divisible by the {jax.process_count()} hosts."
    )
  return global_batch // jax.process_count()


def _stack(examples: Sequence[dict]) -> dict[str, np.ndarray]:
  return {k: np.stack([e[k] for e in examples]) for k in examples[0]}


def _with_index(index: int, example: dict) -> dict:
  return {**example, "index": np.int32(index)}


def train_stream(
  dataset: Dataset,
  data_config,
  fields: Sequence[str],
  *,
  seed: int,
  prepare: Callable[[dict], dict] | None = None,
) -> grain.DatasetIterator:
  """An endless iterator of augmented per-host batches (dicts of numpy arrays), each with
  `index: i32[B]`, the examples' positions in `dataset` (to name them in messages).

  `prepare` runs on each augmented example (in the loader's threads): a task's host-side targets.

  Epochs are reshuffled from `seed`; augmentation draws from `seed` and the element index, so the
  stream is the same however many threads read it. `get_state()`/`set_state()` checkpoint it.
  """
  augment = functools.partial(
    transforms.random_scale_crop_flip,
    size_hw=tuple(data_config.image_size),
    scale_range=tuple(data_config.scale_range),
    hflip=data_config.hflip,
    ignore_index=data_config.ignore_index,
  )
  stream = (
    grain.MapDataset.source(dataset.source)
    .map_with_index(_with_index)
    .seed(seed)
    .shuffle()
    .repeat()
    .map(functools.partial(select, fields=(*fields, "index")))
    .random_map(lambda example, rng: augment(example, rng))
    .map(prepare or (lambda example: example))
    .batch(_per_host(data_config.batch_size), drop_remainder=True, batch_fn=_stack)
  )[jax.process_index() :: jax.process_count()]
  options = grain.ReadOptions(
    num_threads=data_config.num_threads, prefetch_buffer_size=data_config.prefetch
  )
  return iter(stream.to_iter_dataset(options))


def eval_batches(
  dataset: Dataset,
  data_config,
  fields: Sequence[str],
  *,
  batch_size: int,
  image_size: tuple[int, int] | None = None,
  resize: str = "stretch",
  limit: int | None = None,
) -> Iterator[dict[str, np.ndarray]]:
  """Per-host batches of the whole split (or its first `limit` examples), unaugmented, brought
  to `image_size` (default `data_config.image_size`): resized to it (`resize="stretch"`), or
  fitted inside it with the aspect ratio kept and padded with void (`"pad"`).

  The last batch is padded with void examples (image 0, labels `ignore_index`) so that every
  batch has the same shape and every host the same number of batches; each batch has a boolean
  `valid: [B]` marking real examples.
  """
  per_host = _per_host(batch_size)
  size = len(dataset.source) if limit is None else min(limit, len(dataset.source))
  # Every host runs the same number of batches: that of the largest host slice, rounded up.
  largest_slice = math.ceil(size / jax.process_count())
  num_batches = math.ceil(largest_slice / per_host)
  indices = list(range(jax.process_index(), size, jax.process_count()))
  indices += [-1] * (num_batches * per_host - len(indices))  # -1: a padding example
  size_hw = tuple(image_size or data_config.image_size)
  if resize == "pad":
    to_size = functools.partial(
      transforms.resize_and_pad, size_hw=size_hw, ignore_index=data_config.ignore_index
    )
  else:
    to_size = functools.partial(transforms.resize, size_hw=size_hw)
  examples = (
    grain.MapDataset.source(dataset.source)
    .map(functools.partial(select, fields=fields))
    .map(to_size)
  )
  void = _void_example(examples[0], data_config.ignore_index)

  def load(index: int) -> dict:
    return {**(examples[index] if index >= 0 else void), "valid": np.bool_(index >= 0)}

  stream = grain.MapDataset.source(indices).map(load).batch(per_host, batch_fn=_stack)
  options = grain.ReadOptions(
    num_threads=data_config.num_threads, prefetch_buffer_size=data_config.prefetch
  )
  return iter(stream.to_iter_dataset(options))


def _void_example(template: dict, ignore_index: int) -> dict:
  void = {"panoptic": ignore_index * 1000, "image": 0}
  return {k: np.full_like(v, void.get(k, ignore_index)) for k, v in template.items()}

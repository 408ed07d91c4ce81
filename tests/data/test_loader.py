"""Input pipelines: seeded order, exact restore from a saved position, host shards, eval padding."""

import jax
import numpy as np
import pytest

from segjax.config import base_config
from segjax.data import Dataset
from segjax.data.loader import eval_batches, train_stream

FIELDS = ("image", "semantic")


class IndexedSource:
  """Example i has its index written into the image's first two channels."""

  def __init__(self, n):
    self.n = n

  def __len__(self):
    return self.n

  def __getitem__(self, i):
    image = np.zeros((4, 4, 3), np.uint8)
    image[..., 0], image[..., 1] = i // 256, i % 256
    return {"image": image, "semantic": np.full((4, 4), i % 3, np.uint8)}


def _ids(batch):
  return (batch["image"][:, 0, 0, 0].astype(int) * 256 + batch["image"][:, 0, 0, 1]).tolist()


def _data_config(batch_size=4):
  c = base_config().data
  c.image_size, c.batch_size, c.scale_range, c.hflip = (4, 4), batch_size, (1.0, 1.0), False
  return c


DATASET = Dataset(IndexedSource(10), class_names=("a", "b", "c"))


def test_epochs_are_seeded_permutations():
  stream = train_stream(DATASET, _data_config(batch_size=5), FIELDS, seed=3)
  first, second = [_ids(next(stream)) + _ids(next(stream)) for _ in range(2)]
  assert sorted(first) == sorted(second) == list(range(10))
  assert first != second  # reshuffled every epoch
  again = train_stream(DATASET, _data_config(batch_size=5), FIELDS, seed=3)
  assert _ids(next(again)) + _ids(next(again)) == first
  other = train_stream(DATASET, _data_config(batch_size=5), FIELDS, seed=4)
  assert _ids(next(other)) + _ids(next(other)) != first


def test_restored_position_gives_the_same_batches():
  stream = train_stream(DATASET, _data_config(), FIELDS, seed=0)
  for _ in range(3):
    next(stream)
  state = stream.get_state()
  expected = [_ids(next(stream)) for _ in range(4)]
  resumed = train_stream(DATASET, _data_config(), FIELDS, seed=0)
  resumed.set_state(state)
  assert [_ids(next(resumed)) for _ in range(4)] == expected


@pytest.fixture
def two_hosts(monkeypatch):
  def as_host(index):
    monkeypatch.setattr(jax, "process_index", lambda: index)
    monkeypatch.setattr(jax, "process_count", lambda: 2)

  return as_host


def test_hosts_read_their_rows_of_the_one_global_stream(two_hosts):
  single = train_stream(DATASET, _data_config(batch_size=4), FIELDS, seed=0)
  expected = [next(single) for _ in range(5)]
  parts = []
  for host in (0, 1):
    two_hosts(host)
    stream = train_stream(DATASET, _data_config(batch_size=4), FIELDS, seed=0)
    parts.append([next(stream) for _ in range(5)])
  for whole, first, second in zip(expected, *parts, strict=True):
    # Host 0 holds rows 0-1 of each global batch, host 1 rows 2-3: images (augmented) included.
    for key in whole:
      np.testing.assert_array_equal(np.concatenate([first[key], second[key]]), whole[key])
    assert not set(_ids(first)) & set(_ids(second))


def test_eval_batches_pad_with_void_and_mark_valid(two_hosts):
  config = _data_config()
  per_host = []
  for host in (0, 1):
    two_hosts(host)
    batches = list(eval_batches(DATASET, config, FIELDS, batch_size=4))
    per_host.append(batches)
    ids = [i for b in batches for i, v in zip(_ids(b), b["valid"], strict=True) if v]
    assert ids == list(range(host, 10, 2))
    for b in batches:
      assert b["image"].shape == (2, 4, 4, 3)
      assert np.all(b["semantic"][~b["valid"]] == 255)
  assert len(per_host[0]) == len(per_host[1]) == 3  # 5 examples per host, 2 per batch


def test_eval_limit():
  batches = list(eval_batches(DATASET, _data_config(), FIELDS, batch_size=4, limit=6))
  assert sum(int(b["valid"].sum()) for b in batches) == 6


class WideSource:
  """One 2x4 example: labels 0..7 in raster order."""

  def __len__(self):
    return 1

  def __getitem__(self, i):
    semantic = np.arange(8, dtype=np.uint8).reshape(2, 4)
    return {"image": np.full((2, 4, 3), 7, np.uint8), "semantic": semantic}


def test_eval_batches_with_pad_keep_the_aspect_ratio_and_void_the_rest():
  dataset = Dataset(WideSource(), class_names=tuple("abcdefgh"))
  batch = next(eval_batches(dataset, _data_config(1), FIELDS, batch_size=1, resize="pad"))
  # 2x4 into 4x4: the width allows no scaling, so rows 2-3 are padding.
  np.testing.assert_array_equal(batch["semantic"][0, :2], np.arange(8).reshape(2, 4))
  np.testing.assert_array_equal(batch["semantic"][0, 2:], 255)
  assert (batch["image"][0, :2] == 7).all() and (batch["image"][0, 2:] == 0).all()
  stretched = next(eval_batches(dataset, _data_config(1), FIELDS, batch_size=1))
  np.testing.assert_array_equal(stretched["semantic"][0], np.arange(8).reshape(2, 4).repeat(2, 0))

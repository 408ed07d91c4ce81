"""The semantic task: class weights from data, host-side distance maps, padded evaluation."""

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from segjax.config import base_config
from segjax.data import Dataset
from segjax.errors import InputError
from segjax.losses import class_weights_from_counts, signed_distance_maps
from segjax.tasks.semantic import SemanticTask, resolve_class_weights


class Source:
  def __len__(self):
    return 6

  def __getitem__(self, i):
    rng = np.random.default_rng(i)
    labels = rng.choice(np.array([0, 0, 0, 1, 2, 255], np.uint8), (8, 8))
    return {"image": np.zeros((8, 8, 3), np.uint8), "semantic": labels}


def _dataset(tmp_path):
  return Dataset(Source(), class_names=("a", "b", "c"), cache_dir=str(tmp_path))


def test_class_weights_from_the_train_split_are_counted_once_and_cached(tmp_path):
  config = base_config()
  config.loss.class_weights = "median"
  terms = resolve_class_weights(config, _dataset(tmp_path))
  labels = np.concatenate([Source()[i]["semantic"].ravel() for i in range(6)])
  counts = np.array([(labels == c).sum() for c in range(3)])
  np.testing.assert_allclose(
    terms["ce"]["class_weights"], class_weights_from_counts(counts, method="median"), rtol=1e-6
  )
  assert "class_weights" not in terms["dice"]  # dice takes no class weights
  assert list(tmp_path.glob("segjax_class_counts_*.json"))


def test_a_term_option_overrides_the_global_weights(tmp_path):
  config = base_config()
  config.loss.class_weights = "inverse"
  config.loss.terms = ml_collections.ConfigDict({"ce": {"weight": 1.0, "class_weights": [1, 2, 3]}})
  terms = resolve_class_weights(config, _dataset(tmp_path))
  np.testing.assert_array_equal(terms["ce"]["class_weights"], [1, 2, 3])


def test_wrong_number_of_weights_names_the_classes(tmp_path):
  config = base_config()
  config.loss.class_weights = [1.0, 2.0]
  with pytest.raises(InputError, match=r"config.loss.class_weights has 2 weights.*3 classes"):
    resolve_class_weights(config, _dataset(tmp_path))


def test_boundary_term_gets_distance_maps_from_the_host(tmp_path):
  config = base_config()
  config.loss.terms = ml_collections.ConfigDict(
    {"ce": {"weight": 1.0}, "boundary": {"weight": 0.5, "ramp_steps": (0, 10)}}
  )
  task = SemanticTask(config, _dataset(tmp_path))
  example = Source()[0]
  prepared = task.prepare(example)
  np.testing.assert_array_equal(
    prepared["distance_maps"], signed_distance_maps(example["semantic"], 3)
  )
  batch = {k: jnp.asarray(v[None]) for k, v in prepared.items()}
  logits = jnp.zeros((1, 8, 8, 3))
  total, parts = task.loss({"logits": logits}, batch, jnp.asarray(5))
  np.testing.assert_allclose(total, parts["loss_ce"] + 0.25 * parts["loss_boundary"], rtol=1e-6)


def test_padding_examples_add_nothing_to_the_statistics(tmp_path):
  task = SemanticTask(base_config(), _dataset(tmp_path))
  labels = np.stack([Source()[i]["semantic"] for i in range(2)])
  logits = jnp.asarray(np.random.default_rng(0).normal(size=(2, 8, 8, 3)), jnp.float32)
  full = task.eval_stats({"logits": logits}, {"semantic": labels, "valid": np.array([1, 1], bool)})
  half = task.eval_stats({"logits": logits}, {"semantic": labels, "valid": np.array([1, 0], bool)})
  first = task.eval_stats(
    {"logits": logits[:1]}, {"semantic": labels[:1], "valid": np.array([1], bool)}
  )
  np.testing.assert_array_equal(half["confusion_matrix"], first["confusion_matrix"])
  assert full["confusion_matrix"].sum() > half["confusion_matrix"].sum()

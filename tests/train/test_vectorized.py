"""Loss variants trained together equal the same variants trained one by one."""

import copy

import jax
import ml_collections
import numpy as np
import pytest

from segjax.data import DATASETS
from segjax.errors import InputError
from segjax.train.logging import read_metrics
from segjax.train.loop import build, restore_state, train
from segjax.train.vectorized import train_variants

pytestmark = pytest.mark.slow

VARIANTS = (
  {"ce": {"weight": 1.0}},
  {"dice": {"weight": 1.0}, "ce": {"weight": 0.5}},
  {"ce": {"weight": 1.0}, "boundary": {"weight": 0.1, "ramp_steps": (0, 4)}},
)


def _configs(tiny_config):
  configs = []
  for terms in VARIANTS:
    config = copy.deepcopy(tiny_config)
    config.loss.terms = ml_collections.ConfigDict(terms)
    config.train.steps = config.train.eval_every = config.train.checkpoint_every = 6
    configs.append(config)
  return configs


def test_vectorized_variants_equal_sequential_runs(tiny_config, tmp_path):
  configs = _configs(tiny_config)
  sequential = [train(c, str(tmp_path / f"seq{i}")) for i, c in enumerate(configs)]
  # Interrupted at step 4 and resumed, like a preempted group.
  workdirs = [str(tmp_path / f"vec{i}") for i in range(len(configs))]
  train_variants(configs, workdirs, stop_after=4)
  vectorized = train_variants(configs, workdirs)
  dataset = DATASETS["shapes"](tiny_config.data, "train")
  for i, config in enumerate(configs):
    exp = build(config, dataset)
    _, a = restore_state(exp, str(tmp_path / f"seq{i}"), "latest")
    _, b = restore_state(exp, workdirs[i], "latest")
    # Summation order differs under vmap; Adam turns the sign of a near-zero gradient into a
    # step of +-lr (1e-3 here), so a parameter may move by up to ~lr from the sequential run.
    leaves = zip(jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b), strict=True)
    for (path, x), y in leaves:
      np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-3, err_msg=f"variant {i} {path}")
    assert vectorized[i]["miou"] == pytest.approx(sequential[i]["miou"], abs=1e-4)
    losses = [
      {r["step"]: r["loss"] for r in read_metrics(w) if r["split"] == "train"}
      for w in (tmp_path / f"seq{i}", workdirs[i])
    ]
    assert losses[0].keys() == losses[1].keys() == {2, 4, 6}
    for step in losses[0]:
      assert losses[1][step] == pytest.approx(losses[0][step], rel=1e-5)


def test_variants_that_differ_outside_the_loss_are_refused(tiny_config, tmp_path):
  configs = _configs(tiny_config)[:2]
  configs[1].optimizer.learning_rate = 0.1
  with pytest.raises(InputError, match=r"optimizer.learning_rate"):
    train_variants(configs, [str(tmp_path / "a"), str(tmp_path / "b")])

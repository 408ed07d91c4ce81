"""Learning-rate schedules and the optimiser's weight decay, against hand-worked values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from segjax.config import base_config
from segjax.errors import InputError
from segjax.train.state import learning_rate_schedule, make_optimizer


def test_poly_schedule_follows_deeplab_formula():
  c = base_config()
  c.schedule.name, c.schedule.warmup_steps, c.schedule.power = "poly", 0, 0.9
  c.optimizer.learning_rate = 0.01
  schedule = learning_rate_schedule(c.optimizer, c.schedule, 1000)
  for step in (0, 1, 250, 500, 999, 1000):
    assert float(schedule(step)) == pytest.approx(0.01 * (1 - step / 1000) ** 0.9, abs=1e-9)


def test_warmup_reaches_the_peak_then_decays():
  c = base_config()
  c.schedule.name, c.schedule.warmup_steps = "poly", 10
  c.optimizer.learning_rate = 0.1
  schedule = learning_rate_schedule(c.optimizer, c.schedule, 110)
  assert float(schedule(5)) == pytest.approx(0.05)
  assert float(schedule(10)) == pytest.approx(0.1)
  assert float(schedule(60)) == pytest.approx(0.1 * 0.5**0.9, rel=1e-6)


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_weight_decay_spares_biases_and_norms(name):
  c = base_config()
  c.optimizer.name, c.optimizer.learning_rate, c.optimizer.weight_decay = name, 0.1, 0.5
  c.schedule.name, c.schedule.warmup_steps, c.optimizer.grad_clip_norm = "constant", 0, 0.0
  optimizer = make_optimizer(c)
  params = {
    "conv": {"kernel": jnp.ones((3, 3, 2, 4)), "bias": jnp.ones((4,))},
    "bn": {"scale": jnp.ones((4,)), "bias": jnp.ones((4,))},
  }
  zero_grads = jax.tree.map(jnp.zeros_like, params)
  updates, _ = optimizer.update(zero_grads, optimizer.init(params), params)
  # With zero gradients only the decay moves a parameter: by -lr * wd * value, for SGD through
  # Nesterov momentum 0.9 (the first step applies the gradient 1 + 0.9 times, as torch's SGD).
  factor = 1.9 if name == "sgd" else 1.0
  np.testing.assert_allclose(updates["conv"]["kernel"], -0.1 * 0.5 * factor, rtol=1e-6)
  for leaf in (updates["conv"]["bias"], updates["bn"]["scale"], updates["bn"]["bias"]):
    np.testing.assert_array_equal(leaf, 0.0)


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_frozen_parameters_keep_their_values_and_get_no_state(name):
  c = base_config()
  c.optimizer.name, c.optimizer.learning_rate, c.optimizer.weight_decay = name, 0.1, 0.5
  c.schedule.name, c.schedule.warmup_steps, c.optimizer.grad_clip_norm = "constant", 0, 1.0
  c.optimizer.frozen = ("^encoder/",)
  optimizer = make_optimizer(c)
  params = {
    "encoder": {"conv": {"kernel": jnp.ones((3, 3, 2, 4)), "bias": jnp.ones((4,))}},
    "decoder": {"encoder_proj": {"kernel": jnp.ones((2, 4))}},  # "encoder" not at the start
  }
  grads = jax.tree.map(lambda p: jnp.full_like(p, 3.0), params)
  state = optimizer.init(params)
  updates, _ = optimizer.update(grads, state, params)
  for leaf in jax.tree.leaves(updates["encoder"]):
    np.testing.assert_array_equal(leaf, 0.0)
  # The trained kernel's gradient is clipped to norm 1 over the trained parameters alone (8
  # entries of 3: each 1/sqrt(8)), then SGD (1 + 0.9 Nesterov) or Adam's sign-like first step,
  # plus decay 0.1 * 0.5 * 1.
  clipped = 1 / np.sqrt(8)
  step = 1.9 * (clipped + 0.5) if name == "sgd" else 1.0 + 0.5
  np.testing.assert_allclose(updates["decoder"]["encoder_proj"]["kernel"], -0.1 * step, rtol=1e-5)
  # No momentum or moments are kept for frozen parameters.
  shapes = {leaf.shape for leaf in jax.tree.leaves(state) if hasattr(leaf, "shape")}
  assert (3, 3, 2, 4) not in shapes and (2, 4) in shapes


def test_a_frozen_pattern_that_matches_nothing_names_it_and_the_modules():
  c = base_config()
  c.optimizer.frozen = ("image_encoder",)
  optimizer = make_optimizer(c)
  params = {"backbone": {"conv": {"kernel": jnp.ones((1, 1, 2, 2))}}}
  with pytest.raises(InputError, match=r"'image_encoder', which matches no parameter.*backbone"):
    optimizer.init(params)

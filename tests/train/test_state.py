"""Learning-rate schedules and the optimiser's weight decay, against hand-worked values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from segjax.config import base_config
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

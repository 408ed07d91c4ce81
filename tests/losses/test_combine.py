"""`combine`: the weighted sum of its terms, each called with its own options."""

import jax
import numpy as np
import pytest

from segjax.losses import LOSSES, combine, cross_entropy, dice_loss, focal_loss


def _inputs():
  logits = jax.random.normal(jax.random.key(0), (2, 8, 8, 4))
  labels = jax.random.randint(jax.random.key(1), (2, 8, 8), 0, 4)
  labels = labels.at[0, :2].set(255)
  return logits, labels


def test_weighted_sum_of_terms_with_options():
  logits, labels = _inputs()
  loss = combine({"ce": 1.0, "dice": 0.5, "focal": {"weight": 2.0, "gamma": 1.0}}, LOSSES)
  total, parts = jax.jit(loss)(logits, labels)
  ce, dice = cross_entropy(logits, labels), dice_loss(logits, labels)
  focal = focal_loss(logits, labels, gamma=1.0)
  np.testing.assert_allclose(parts["ce"], ce, rtol=1e-6)
  np.testing.assert_allclose(parts["focal"], focal, rtol=1e-6)
  np.testing.assert_allclose(total, ce + 0.5 * dice + 2.0 * focal, rtol=1e-6)


def test_ignore_index_reaches_every_term():
  logits, labels = _inputs()
  labels = labels.at[1].set(7)
  total, _ = combine({"ce": 1.0, "dice": 1.0}, LOSSES, ignore_index=7)(logits, labels)
  expected = cross_entropy(logits, labels, ignore_index=7) + dice_loss(
    logits, labels, ignore_index=7
  )
  np.testing.assert_allclose(total, expected, rtol=1e-6)


def test_unknown_term_lists_the_known_ones():
  with pytest.raises(ValueError, match=r"Unknown loss term 'dcie'.*'dice'"):
    combine({"dcie": 1.0}, LOSSES)


def test_ramped_weight_and_extra_inputs():
  from segjax.losses import boundary_loss, signed_distance_maps

  logits, labels = _inputs()
  maps = signed_distance_maps(np.asarray(labels), 4)
  loss = combine({"ce": 1.0, "boundary": {"weight": 2.0, "ramp_steps": (10, 20)}}, LOSSES)
  assert loss.inputs == ("distance_maps",)
  ce = cross_entropy(logits, labels)
  boundary = boundary_loss(logits, labels, distance_maps=maps)
  for step, fraction in ((0, 0.0), (10, 0.0), (15, 0.5), (20, 1.0), (99, 1.0)):
    total, parts = loss(logits, labels, step=step, distance_maps=maps)
    np.testing.assert_allclose(parts["boundary"], boundary, rtol=1e-6)
    np.testing.assert_allclose(total, ce + 2.0 * fraction * boundary, rtol=1e-5, atol=1e-7)


def test_registry_defaults_to_the_package_losses():
  logits, labels = _inputs()
  total, _ = jax.jit(combine({"ce": 1.0, "dice": 1.0}))(logits, labels)
  np.testing.assert_allclose(
    total, cross_entropy(logits, labels) + dice_loss(logits, labels), rtol=1e-6
  )

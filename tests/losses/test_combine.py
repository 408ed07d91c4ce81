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

"""segjax.losses.class_weights: hand-computed weights for every method."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from segjax.losses.class_weights import CLASS_WEIGHT_METHODS, class_weights_from_counts

# 100 pixels: f = (0.1, 0.3, 0, 0.6); class 2 never occurs.
COUNTS = np.array([10, 30, 0, 60])


def test_inverse_frequency_by_hand():
  # 1/f = (10, 10/3, -, 5/3), mean over the 3 present classes (10 + 10/3 + 5/3) / 3 = 5,
  # so w = (2, 2/3, 0, 1/3).
  got = class_weights_from_counts(COUNTS, "inverse")
  np.testing.assert_allclose(got, [2.0, 2 / 3, 0.0, 1 / 3], rtol=1e-6)
  np.testing.assert_allclose(np.mean(np.asarray(got)[COUNTS > 0]), 1.0, rtol=1e-6)


def test_median_frequency_by_hand():
  # median(0.1, 0.3, 0.6) = 0.3 (the absent class is not part of the median):
  # w = 0.3 / f = (3, 1, 0, 0.5).
  got = class_weights_from_counts(COUNTS, "median")
  np.testing.assert_allclose(got, [3.0, 1.0, 0.0, 0.5], rtol=1e-6)
  # Even number of present classes: f = (0.05, 0.15, 0.3, 0.5), median (0.15 + 0.3) / 2 = 0.225.
  got = class_weights_from_counts(np.array([10, 30, 60, 100]), "median")
  np.testing.assert_allclose(got, [4.5, 1.5, 0.75, 0.45], rtol=1e-6)


def test_enet_by_hand():
  # 1 / ln(1.02 + f) for f = 0.1, 0.3, 0.6; 0 for the absent class.
  expected = [1 / math.log(1.12), 1 / math.log(1.32), 0.0, 1 / math.log(1.62)]
  np.testing.assert_allclose(class_weights_from_counts(COUNTS, "enet"), expected, rtol=1e-6)


@pytest.mark.parametrize("method", CLASS_WEIGHT_METHODS)
def test_numpy_jax_float_and_jit_inputs_agree(method):
  expected = class_weights_from_counts(COUNTS, method)
  assert expected.dtype == jnp.float32 and expected.shape == (4,)
  np.testing.assert_allclose(class_weights_from_counts(jnp.asarray(COUNTS), method), expected)
  np.testing.assert_allclose(class_weights_from_counts(COUNTS * 0.5, method), expected, rtol=1e-6)
  jitted = jax.jit(class_weights_from_counts, static_argnames="method")
  np.testing.assert_allclose(jitted(COUNTS, method=method), expected, rtol=1e-6)


@pytest.mark.parametrize("method", CLASS_WEIGHT_METHODS)
def test_all_zero_counts_give_zero_weights(method):
  got = class_weights_from_counts(np.zeros(3), method)
  np.testing.assert_array_equal(got, np.zeros(3))


def test_unknown_method_lists_the_known_ones():
  with pytest.raises(ValueError, match=r"inverse.*median.*enet"):
    class_weights_from_counts(COUNTS, "sqrt")

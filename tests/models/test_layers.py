"""Layers written for speed against the XLA operations they stand in for."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from segjax.models.layers import DepthwiseConv, max_pool


@pytest.mark.parametrize("kernel", [3, 4, 5])
def test_depthwise_conv_equals_a_grouped_convolution_with_the_same_parameter(kernel):
  x = jax.random.normal(jax.random.key(0), (2, 9, 7, 6))
  layer = DepthwiseConv(kernel)
  params = layer.init(jax.random.key(1), x)
  grouped = nn.Conv(
    6, (kernel, kernel), padding="SAME", feature_group_count=6, use_bias=False
  )  # Flax's SAME puts the extra row of an even kernel after, as DepthwiseConv does
  assert jax.tree.map(jnp.shape, params) == jax.tree.map(
    jnp.shape, grouped.init(jax.random.key(1), x)
  )
  np.testing.assert_allclose(layer.apply(params, x), grouped.apply(params, x), atol=1e-5)
  grads = [
    jax.grad(lambda p, m=m: jnp.sum(jnp.sin(m.apply(p, x))))(params) for m in (layer, grouped)
  ]
  np.testing.assert_allclose(grads[0]["params"]["kernel"], grads[1]["params"]["kernel"], atol=1e-4)


@pytest.mark.parametrize("window, stride, padding, size", [(2, 2, 0, (8, 6)), (3, 2, 1, (9, 6))])
def test_max_pool_equals_a_plain_numpy_max_and_routes_gradients_like_flax(
  window, stride, padding, size
):
  rng = np.random.default_rng(window)
  x = rng.normal(size=(2, *size, 3)).astype(np.float32)  # no ties
  pooled = np.asarray(max_pool(jnp.asarray(x), window, stride, padding))
  padded = np.pad(x, ((0, 0), (padding,) * 2, (padding,) * 2, (0, 0)), constant_values=-np.inf)
  out_h = (size[0] + 2 * padding - window) // stride + 1
  out_w = (size[1] + 2 * padding - window) // stride + 1
  expected = np.empty((2, out_h, out_w, 3), np.float32)
  for i in range(out_h):
    for j in range(out_w):
      patch = padded[:, i * stride : i * stride + window, j * stride : j * stride + window]
      expected[:, i, j] = patch.max(axis=(1, 2))
  np.testing.assert_array_equal(pooled, expected)

  weights = jnp.asarray(rng.normal(size=expected.shape), jnp.float32)
  flax_pool = functools.partial(
    nn.max_pool, window_shape=(window, window), strides=(stride, stride),
    padding=((padding, padding), (padding, padding)),
  )  # fmt: skip
  ours = jax.grad(lambda x: (max_pool(x, window, stride, padding) * weights).sum())(jnp.asarray(x))
  theirs = jax.grad(lambda x: (flax_pool(x) * weights).sum())(jnp.asarray(x))
  np.testing.assert_allclose(ours, theirs, rtol=1e-6)

"""Layers written for speed against the XLA operations they stand in for."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from segjax.models.layers import DepthwiseConv


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

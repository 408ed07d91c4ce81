"""U-Net: shapes, a hand-worked parameter count, gradients everywhere, exact up-sampling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from segjax.models import MODELS, UNet
from segjax.models.layers import Upsample2x, depth_to_space


def _conv(cin, cout, k=3, bias=False):
  return k * k * cin * cout + (cout if bias else 0)


def _block(cin, cout):
  # Two 3x3 convs without bias, each followed by batch norm (scale + offset).
  return _conv(cin, cout) + 2 * cout + _conv(cout, cout) + 2 * cout


def test_default_parameter_count_matches_hand_count():
  widths, bottleneck, classes = (64, 128, 256), 512, 7
  expected, cin = 0, 3
  for w in widths:
    expected += _block(cin, w)
    cin = w
  expected += _block(cin, bottleneck)
  cin = bottleneck
  for w in reversed(widths):
    expected += cin * 4 * w + 4 * w  # 1x1 projection to 4w channels (with bias)
    expected += _block(2 * w, w)  # after concatenating the skip
    cin = w
  expected += _conv(cin, classes, k=1, bias=True)
  model = UNet(num_classes=classes)
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 64, 64, 3))))
  count = sum(x.size for x in jax.tree.leaves(variables["params"]))
  assert count == expected == 7_701_895


@pytest.mark.parametrize("name", ["unet_tiny", "unet_small"])
def test_output_shape_and_dtype(name):
  model = MODELS[name](num_classes=5)
  x = jnp.zeros((2, 32, 48, 3))
  variables = model.init(jax.random.key(0), x)
  out = model.apply(variables, x)
  assert out["logits"].shape == (2, 32, 48, 5)
  assert out["logits"].dtype == jnp.float32


def test_bfloat16_compute_keeps_float32_params():
  model = MODELS["unet_tiny"](num_classes=3, dtype=jnp.bfloat16)
  variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
  assert {x.dtype for x in jax.tree.leaves(variables["params"])} == {jnp.dtype(jnp.float32)}
  assert model.apply(variables, jnp.ones((1, 32, 32, 3)))["logits"].dtype == jnp.float32


def test_gradients_reach_every_parameter():
  model = MODELS["unet_tiny"](num_classes=3)
  x = jax.random.normal(jax.random.key(1), (2, 32, 32, 3))
  variables = model.init(jax.random.key(0), x)

  def loss(params):
    out, _ = model.apply({**variables, "params": params}, x, train=True, mutable=["batch_stats"])
    return jnp.mean(out["logits"] ** 2 * jnp.arange(1, 4))

  grads = jax.grad(loss)(variables["params"])
  flat = jax.tree_util.tree_leaves_with_path(grads)
  dead = [jax.tree_util.keystr(path) for path, g in flat if not np.any(np.asarray(g) != 0)]
  assert not dead, f"no gradient reaches {dead}"


def test_rejects_sizes_the_encoder_cannot_halve():
  model = MODELS["unet_tiny"](num_classes=3)
  with pytest.raises(ValueError, match="divisible by 4"):
    model.init(jax.random.key(0), jnp.zeros((1, 30, 32, 3)))


def test_depth_to_space_by_hand():
  # One pixel, channels ordered (row, col, feature): [a b; c d] with a single feature.
  x = jnp.arange(4.0).reshape(1, 1, 1, 4)
  np.testing.assert_array_equal(depth_to_space(x, 2)[0, :, :, 0], [[0, 1], [2, 3]])


def test_upsample_equals_stride_2_transposed_convolution():
  """Matmul + depth-to-space is a 2x2 stride-2 transposed convolution with the same weights."""
  cin, cout = 3, 2
  x = jax.random.normal(jax.random.key(0), (1, 4, 5, cin))
  layer = Upsample2x(cout)
  params = layer.init(jax.random.key(1), x)
  ours = layer.apply(params, x)
  # Dense kernel [cin, (row, col, cout)] -> transposed-conv kernel [row, col, cin, cout].
  kernel = params["params"]["Dense_0"]["kernel"].reshape(cin, 2, 2, cout).transpose(1, 2, 0, 3)
  # lax.conv_transpose correlates the dilated input, so its kernel is the spatial flip of the
  # scatter pattern (output[2i + a] += x[i] * k[a]) that depth-to-space implements.
  kernel = kernel[::-1, ::-1]
  bias = params["params"]["Dense_0"]["bias"].reshape(2, 2, cout)
  reference = jax.lax.conv_transpose(
    x, kernel, strides=(2, 2), padding="VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
  )
  reference = reference + jnp.tile(bias, (4, 5, 1))[None]
  np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-5)


def test_resnet_encoder_gives_full_resolution_logits_and_a_backbone_to_load():
  model = UNet(num_classes=4, backbone="resnet18", backbone_width=8, widths=(32, 16, 16, 8, 8))
  x = jax.random.normal(jax.random.key(1), (2, 64, 96, 3))
  variables = model.init(jax.random.key(0), x)
  assert model.apply(variables, x)["logits"].shape == (2, 64, 96, 4)
  # The encoder is the same module as DeepLab's: its variables load converted torch weights.
  resnet = MODELS["deeplabv3"](num_classes=4, backbone="resnet18", backbone_width=8)
  deeplab = jax.eval_shape(lambda: resnet.init(jax.random.key(0), x))
  same = jax.tree.map(lambda a, b: a.shape == b.shape, variables["params"]["backbone"],
                      deeplab["params"]["backbone"])  # fmt: skip
  assert all(jax.tree.leaves(same))
  with pytest.raises(ValueError, match="divisible by 32"):
    model.init(jax.random.key(0), jnp.zeros((1, 48, 48, 3)))

"""ResNet backbones and DeepLabv3/v3+: shapes, parameter counts, frozen and synchronised BN."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from segjax.models import MODELS
from segjax.models.backbones import ResNet, resnet


@pytest.mark.parametrize("depth", [18, 50])
@pytest.mark.parametrize("output_stride", [None, 16, 8])
def test_feature_shapes_at_every_output_stride(depth, output_stride):
  model = resnet(depth, output_stride=output_stride, width=8)
  shapes = jax.eval_shape(
    lambda: model.init_with_output(jax.random.key(0), jnp.zeros((2, 64, 96, 3)))[0]
  )
  expansion = 1 if depth == 18 else 4
  strides = {"c2": 4, "c3": 8, "c4": 16, "c5": 32}
  for name, stride in strides.items():
    stride = min(stride, output_stride or 32)
    width = 8 * expansion * 2 ** (int(name[1]) - 2)
    assert shapes[name].shape == (2, 64 // stride, 96 // stride, width), name


def _count(model, size=(1, 64, 64, 3)):
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(size)))
  return sum(x.size for x in jax.tree.leaves(variables["params"]))


def test_deeplabv3_parameter_count_matches_a_hand_count():
  # torchvision's deeplabv3_resnet50 without its auxiliary head, 21 classes.
  backbone = 25_557_032 - 2048 * 1000 - 1000
  branch_1x1 = 2048 * 256 + 2 * 256  # conv without bias + batch norm
  branch_3x3 = 9 * 2048 * 256 + 2 * 256
  aspp = 2 * branch_1x1 + 3 * branch_3x3 + (5 * 256 * 256 + 2 * 256)  # + image pool, project
  head = 9 * 256 * 256 + 2 * 256
  classifier = 256 * 21 + 21
  assert _count(MODELS["deeplabv3"](num_classes=21)) == backbone + aspp + head + classifier


def test_deeplabv3plus_adds_the_decoder():
  plus, plain = MODELS["deeplabv3plus"](num_classes=21), MODELS["deeplabv3"](num_classes=21)
  low_level = 256 * 48 + 2 * 48
  decoder = 9 * (256 + 48) * 256 + 2 * 256 + 9 * 256 * 256 + 2 * 256
  head = 9 * 256 * 256 + 2 * 256  # DeepLabv3's 3x3 head, which v3+ replaces by the decoder
  assert _count(plus) - _count(plain) == low_level + decoder - head


@pytest.mark.parametrize("name", ["deeplabv3", "deeplabv3plus"])
def test_logits_cover_the_input_at_any_size(name):
  model = MODELS[name](
    num_classes=5, backbone="resnet18", backbone_width=8, aspp_features=16, dtype=jnp.bfloat16
  )
  x = jnp.ones((2, 45, 70, 3))
  variables = model.init(jax.random.key(0), x)
  assert {a.dtype for a in jax.tree.leaves(variables["params"])} == {jnp.dtype(jnp.float32)}
  logits = model.apply(variables, x)["logits"]
  assert logits.shape == (2, 45, 70, 5) and logits.dtype == jnp.float32


def test_unknown_backbone_and_output_stride_are_named():
  with pytest.raises(ValueError, match="resnet51"):
    MODELS["deeplabv3"](num_classes=2, backbone="resnet51").init(
      jax.random.key(0), jnp.zeros((1, 32, 32, 3))
    )
  with pytest.raises(ValueError, match="output_stride=4"):
    ResNet(depth=18, output_stride=4).init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))


def test_frozen_batch_norm_neither_learns_nor_updates_statistics():
  model = ResNet(depth=18, width=8, norm="frozen_batch")
  x = jax.random.normal(jax.random.key(1), (2, 32, 32, 3))
  variables = model.init(jax.random.key(0), x)
  # Non-trivial statistics, so that a wrong formula shows (small means keep the ReLUs alive).
  leaves, treedef = jax.tree.flatten(variables["batch_stats"])
  rng = np.random.default_rng(0)
  stats = jax.tree.unflatten(treedef, [v + rng.uniform(0, 0.1, v.shape) for v in leaves])

  def loss(params):
    out, updates = model.apply(
      {"params": params, "batch_stats": stats}, x, train=True, mutable=["batch_stats"]
    )
    return jnp.sum(out["c5"] ** 2), updates

  grads, updates = jax.grad(loss, has_aux=True)(variables["params"])
  assert np.all(np.asarray(grads["bn1"]["scale"]) == 0)
  assert np.any(np.asarray(grads["conv1"]["kernel"]) != 0)
  assert jax.tree.all(jax.tree.map(np.array_equal, updates["batch_stats"], stats))
  # Eval-mode batch norm with the same variables is the same function.
  bn = ResNet(depth=18, width=8, norm="batch")
  frozen_out = model.apply({"params": variables["params"], "batch_stats": stats}, x)
  bn_out = bn.apply({"params": variables["params"], "batch_stats": stats}, x)
  np.testing.assert_allclose(frozen_out["c5"], bn_out["c5"], rtol=1e-5, atol=1e-5)


SYNC_BN_SCRIPT = textwrap.dedent(
  """
  import json
  import jax, jax.numpy as jnp, numpy as np
  from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
  from segjax.models.layers import norm_layer
  import flax.linen as nn

  class Net(nn.Module):
    @nn.compact
    def __call__(self, x, train):
      return norm_layer("batch", train=train, name="bn")(x)

  # Each device's quarter of the batch has a different mean, so local statistics would differ.
  x = np.random.default_rng(0).normal(size=(8, 4, 4, 3)).astype(np.float32)
  x += np.arange(8, dtype=np.float32)[:, None, None, None]
  mesh = Mesh(np.asarray(jax.devices()), ("data",))
  xs = jax.device_put(x, NamedSharding(mesh, P("data")))
  net = Net()
  variables = net.init(jax.random.key(0), x[:1], train=False)
  step = jax.jit(lambda v, x: net.apply(v, x, train=True, mutable=["batch_stats"]))
  y, updates = step(variables, xs)
  stats = jax.device_get(updates["batch_stats"]["bn"])
  print(json.dumps({"devices": len(y.sharding.device_set), "y": np.asarray(y).ravel().tolist(),
                    "mean": np.asarray(stats["mean"]).tolist(),
                    "var": np.asarray(stats["var"]).tolist()}))
  """
)


def test_batch_norm_on_four_devices_uses_the_global_batch():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
  out = subprocess.run(
    [sys.executable, "-c", SYNC_BN_SCRIPT], env=env, capture_output=True, text=True, check=True
  )
  result = json.loads(out.stdout.strip().splitlines()[-1])
  assert result["devices"] == 4
  x = np.random.default_rng(0).normal(size=(8, 4, 4, 3)).astype(np.float32)
  x += np.arange(8, dtype=np.float32)[:, None, None, None]
  mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
  # Running statistics start at (0, 1) and move by 1 - momentum = 0.1 towards the batch's.
  np.testing.assert_allclose(result["mean"], 0.1 * mean, rtol=1e-5)
  np.testing.assert_allclose(result["var"], 0.9 + 0.1 * var, rtol=1e-5)
  expected = (x - mean) / np.sqrt(var + 1e-5)
  np.testing.assert_allclose(np.reshape(result["y"], x.shape), expected, rtol=1e-4, atol=1e-4)

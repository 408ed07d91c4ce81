"""The PyTorch models of the benchmark comparison are segjax's architectures: the same parameter
counts, and for the U-Net the same function once segjax's weights are copied over."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch, the benchmark reference, is not installed")
import torch_models  # noqa: E402

from segjax.models import MODELS  # noqa: E402


def _parameter_count(model, size: int) -> int:
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, size, size, 3))))
  return sum(x.size for x in jax.tree.leaves(variables["params"]))


@pytest.mark.parametrize("widths", [(64, 128, 256), (16, 32, 64), (4, 8)])
def test_unet_parameter_counts_match(widths):
  ours = MODELS["unet"](num_classes=7, widths=widths)
  assert _parameter_count(ours, 64) == torch_models.count_parameters(torch_models.UNet(7, widths))


@pytest.mark.parametrize("depth, output_stride", [(50, 16), (50, 8), (18, 16)])
def test_deeplabv3plus_parameter_counts_match(depth, output_stride):
  ours = MODELS["deeplabv3plus"](
    num_classes=19, backbone=f"resnet{depth}", output_stride=output_stride
  )
  reference = torch_models.DeepLabV3Plus(19, depth, output_stride)
  assert _parameter_count(ours, 64) == torch_models.count_parameters(reference)
  logits = reference.eval()(torch.zeros(1, 3, 64, 48))
  assert tuple(logits.shape) == (1, 19, 64, 48)


def _tensor(x, *transpose: int):
  x = np.array(x)
  return torch.from_numpy(x.transpose(*transpose) if transpose else x)


def _conv_bn(variables, conv_bn, prefix: str, index: int):
  """Copies segjax's Conv_{index} / BatchNorm_{index} under `prefix` into torch's conv-bn-relu."""
  params, stats = variables["params"][prefix], variables["batch_stats"][prefix]
  conv, bn = conv_bn[0], conv_bn[1]
  conv.weight.copy_(_tensor(params[f"Conv_{index}"]["kernel"], 3, 2, 0, 1))
  bn.weight.copy_(_tensor(params[f"BatchNorm_{index}"]["scale"]))
  bn.bias.copy_(_tensor(params[f"BatchNorm_{index}"]["bias"]))
  bn.running_mean.copy_(_tensor(stats[f"BatchNorm_{index}"]["mean"]))
  bn.running_var.copy_(_tensor(stats[f"BatchNorm_{index}"]["var"]))


def test_unet_is_the_same_function():
  widths, classes = (4, 8, 16), 5
  ours = MODELS["unet"](num_classes=classes, widths=widths)
  images = np.random.default_rng(0).normal(size=(2, 32, 24, 3)).astype(np.float32)
  variables = ours.init(jax.random.key(0), jnp.asarray(images))
  # Batch statistics away from (0, 1), so that a mis-mapped one shows.
  keys = iter(jax.random.split(jax.random.key(1), 1000))
  variables = {
    "params": variables["params"],
    "batch_stats": jax.tree.map(
      lambda x: jax.random.uniform(next(keys), x.shape, minval=0.5, maxval=1.5),
      variables["batch_stats"],
    ),
  }
  reference = torch_models.UNet(classes, widths).eval()
  n = len(widths)
  with torch.no_grad():
    for j in range(2):
      _conv_bn(variables, reference.bottleneck[j], "bottleneck", j)
    for i in range(n):
      for j in range(2):
        _conv_bn(variables, reference.down[i][j], f"down_{i}", j)
        _conv_bn(variables, reference.decode[n - 1 - i][j], f"decode_{i}", j)
      # depth-to-space reads channel (row*2 + col)*D + d; PixelShuffle reads d*4 + row*2 + col.
      dense = variables["params"][f"up_{i}"]["Dense_0"]
      width = widths[i]
      order = np.arange(4 * width).reshape(4, width).T.reshape(-1)  # torch channel -> ours
      up = reference.up[n - 1 - i][0]
      up.weight.copy_(_tensor(np.asarray(dense["kernel"])[:, order].T[:, :, None, None]))
      up.bias.copy_(_tensor(np.asarray(dense["bias"])[order]))
    head = variables["params"]["head"]
    reference.head.weight.copy_(_tensor(head["kernel"], 3, 2, 0, 1))
    reference.head.bias.copy_(_tensor(head["bias"]))
    expected = reference(torch.from_numpy(images).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
  logits = ours.apply(variables, jnp.asarray(images))["logits"]
  np.testing.assert_allclose(logits, expected.numpy(), atol=2e-5, rtol=1e-4)


def test_dice_loss_matches_segjax():
  from segjax.losses import dice_loss

  rng = np.random.default_rng(3)
  logits = rng.normal(size=(2, 6, 5, 4)).astype(np.float32)
  labels = rng.integers(0, 4, (2, 6, 5))
  labels[0, :2] = 255
  ours = dice_loss(jnp.asarray(logits), jnp.asarray(labels))
  theirs = torch_models.dice_loss(
    torch.from_numpy(logits).permute(0, 3, 1, 2), torch.from_numpy(labels)
  )
  np.testing.assert_allclose(float(ours), float(theirs), rtol=1e-6)

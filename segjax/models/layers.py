"""Building blocks shared by the convolutional models: conv-norm-act blocks and 2x up-sampling."""

import functools

import flax.linen as nn
import jax.numpy as jnp

NORMS = ("batch", "group", "none")


def depth_to_space(x, block: int):
  """Rearranges channels into spatial blocks (the inverse of space-to-depth).

  Args:
    x: [B,H,W,D*block*block], channels ordered (row, col, feature).
    block: the up-sampling factor.
  Returns:
    [B,H*block,W*block,D].
  """
  b, h, w, d = x.shape
  depth = d // (block * block)
  x = x.reshape(b, h, w, block, block, depth)
  x = x.transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h * block, w * block, depth)


class Norm(nn.Module):
  """Batch norm, group norm or identity, chosen by name."""

  kind: str = "batch"
  groups: int = 8  # group norm: groups of channels; clipped to the channel count
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    if self.kind == "batch":
      # momentum 0.9 (not flax's 0.99) so that short runs evaluate with settled statistics.
      return nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype)(x)
    if self.kind == "group":
      return nn.GroupNorm(num_groups=min(self.groups, x.shape[-1]), dtype=self.dtype)(x)
    if self.kind == "none":
      return x
    raise ValueError(f"norm={self.kind!r} is not one of {NORMS}.")


class ConvBlock(nn.Module):
  """`num_convs` times (3x3 conv, norm, ReLU)."""

  features: int
  num_convs: int = 2
  norm: str = "batch"
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    conv = functools.partial(
      nn.Conv, kernel_size=(3, 3), use_bias=self.norm == "none", dtype=self.dtype
    )
    for _ in range(self.num_convs):
      x = conv(self.features)(x)
      x = Norm(self.norm, dtype=self.dtype)(x, train=train)
      x = nn.relu(x)
    return x


class Upsample2x(nn.Module):
  """Learned 2x up-sampling: a 1x1 projection to 4·D channels, then depth-to-space.

  The same function as a 2x2 stride-2 transposed convolution, but XLA differentiates a matmul far
  faster: on CPU the transposed convolution's gradient is ~70x slower (jax issue 23783).
  """

  features: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    x = nn.Dense(4 * self.features, dtype=self.dtype)(x)
    return depth_to_space(x, 2)

"""Building blocks shared by the convolutional models: conv-norm-act blocks and 2x up-sampling."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

NORMS = ("batch", "frozen_batch", "group", "none")


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


def max_pool(x, window: int, stride: int, padding: int = 0):
  """The maximum over `window`x`window` patches every `stride` pixels, the border padded with
  `padding` (p) pixels of -inf; `x: f[B,H,W,C]` -> f[B,H',W',C], H' = (H+2p-window)//stride + 1.

  `nn.max_pool`'s function, written as the elementwise maximum of window² strided slices: XLA
  differentiates that with comparisons and pads, where `nn.max_pool`'s gradient is a
  select-and-scatter, slow on CPU. Measured here (2 cores, gradient of f32[8,128,128,64]): 2x2
  stride 2, 142 ms as `nn.max_pool`, 50 ms as a reshape and max, 16 ms as slices; ResNet's 3x3
  stride-2 stem pool on f32[8,64,64,64]: 50 ms -> 8 ms. Ties share the gradient (`nn.max_pool`
  gives it to one of them); after a ReLU the ties are zeros, which pass no gradient either way.
  """
  if padding:
    pad = ((0, 0), (padding, padding), (padding, padding), (0, 0))
    x = jnp.pad(x, pad, constant_values=jnp.array(-jnp.inf, x.dtype))
  batch, height, width, channels = x.shape
  out_h, out_w = (height - window) // stride + 1, (width - window) // stride + 1
  pooled = None
  for i in range(window):
    for j in range(window):
      end = (batch, i + stride * (out_h - 1) + 1, j + stride * (out_w - 1) + 1, channels)
      patch = jax.lax.slice(x, (0, i, j, 0), end, (1, stride, stride, 1))
      pooled = patch if pooled is None else jnp.maximum(pooled, patch)
  return pooled


class FrozenBatchNorm(nn.Module):
  """Batch norm with fixed statistics and a fixed affine transform (detectron2's FrozenBatchNorm).

  Its variables have the names and collections of `nn.BatchNorm` (params scale/bias, batch_stats
  mean/var), so checkpoints and converted weights move between the two; no gradient reaches them.
  """

  epsilon: float = 1e-5
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    features = x.shape[-1]
    scale = self.param("scale", nn.initializers.ones, (features,), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (features,), jnp.float32)
    mean = self.variable("batch_stats", "mean", jnp.zeros, (features,), jnp.float32).value
    var = self.variable("batch_stats", "var", jnp.ones, (features,), jnp.float32).value
    multiplier = jax.lax.stop_gradient(scale * jax.lax.rsqrt(var + self.epsilon))
    offset = jax.lax.stop_gradient(bias - mean * multiplier)
    return (x * multiplier.astype(self.dtype) + offset.astype(self.dtype)).astype(self.dtype)


def norm_layer(kind: str, *, train: bool, dtype=jnp.float32, groups: int = 8, name=None):
  """A normalisation module by name, called as `norm(x)`.

  "batch" normalises with the statistics of the whole global batch: under `jit` over a batch
  sharded on the `data` mesh axis, XLA reduces across devices, which makes it synchronised batch
  norm (SyncBN) on any number of devices. Momentum 0.9 (PyTorch's 0.1) so that short runs evaluate
  with settled statistics. "frozen_batch" keeps statistics and affine fixed (for fine-tuning with
  small batches); "group" uses `groups` groups, clipped to the channel count.
  """
  if kind == "batch":
    return nn.BatchNorm(
      use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=dtype, name=name
    )
  if kind == "frozen_batch":
    return FrozenBatchNorm(dtype=dtype, name=name)
  if kind == "group":
    return lambda x: nn.GroupNorm(num_groups=min(groups, x.shape[-1]), dtype=dtype, name=name)(x)
  if kind == "none":
    return lambda x: x
  raise ValueError(f"norm={kind!r} is not one of {NORMS}.")


class DepthwiseConv(nn.Module):
  """A depthwise `kernel`x`kernel` convolution (stride 1, zero "same" padding, no bias) written as
  a sum of k² shifted, per-channel scaled copies of the input.

  The same function and parameter (`kernel: f32[k,k,1,C]`, as `nn.Conv` with
  `feature_group_count=C`), but XLA's grouped convolution is slow on CPU: measured here on
  f32[8,32,32,256] with k=5, its gradient took 1.07 s, the shifted sum's 0.19 s.
  `x: f[B,H,W,C]` -> f[B,H,W,C].
  """

  kernel_size: int = 5
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    k, channels = self.kernel_size, x.shape[-1]
    kernel = self.param("kernel", nn.initializers.lecun_normal(), (k, k, 1, channels))
    kernel = kernel.astype(self.dtype)
    x = x.astype(self.dtype)
    pad = (k - 1) // 2
    padded = jnp.pad(x, ((0, 0), (pad, k - 1 - pad), (pad, k - 1 - pad), (0, 0)))
    height, width = x.shape[1:3]
    out = jnp.zeros_like(x)
    for i in range(k):
      for j in range(k):
        out = out + padded[:, i : i + height, j : j + width] * kernel[i, j, 0]
    return out


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
      x = norm_layer(self.norm, train=train, dtype=self.dtype)(x)
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

"""SAM's image encoder: a ViT with windowed and global attention (ViTDet) and a convolutional neck.

The maths of `segment_anything.modeling.image_encoder`: patches of `patch_size`, a learned absolute
position per patch, blocks whose attention adds decomposed relative positions (MViTv2) and runs
within zero-padded `window`x`window` windows except in `global_attention_indexes`, then
1x1 conv -> LayerNorm -> 3x3 conv -> LayerNorm to `prompt_dim` channels.
"""

import functools
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from segjax.models.sam.config import SamConfig

# torch's nn.GELU is the exact, erf-based one; flax's default is the tanh approximation.
gelu = functools.partial(jax.nn.gelu, approximate=False)


def layer_norm(epsilon: float, dtype, name: str):
  """LayerNorm over the last axis; on NHWC it is also SAM's LayerNorm2d (over channels)."""
  return nn.LayerNorm(epsilon=epsilon, use_fast_variance=False, dtype=dtype, name=name)


def window_partition(x, window: int):
  """Splits a grid into windows, zero-padding it at the bottom and right to multiples of `window`.

  `x: f[B,H,W,C]` -> `(windows f[B*nh*nw,window,window,C], (Hp, Wp))`, windows in row-major order.
  """
  b, h, w, c = x.shape
  pad_h, pad_w = -h % window, -w % window
  x = jnp.pad(x, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)))
  hp, wp = h + pad_h, w + pad_w
  x = x.reshape(b, hp // window, window, wp // window, window, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(-1, window, window, c), (hp, wp)


def window_unpartition(windows, window: int, pad_hw: tuple[int, int], hw: tuple[int, int]):
  """The inverse of `window_partition`, padding removed: -> f[B,H,W,C]."""
  (hp, wp), (h, w) = pad_hw, hw
  b = windows.shape[0] // ((hp // window) * (wp // window))
  x = windows.reshape(b, hp // window, wp // window, window, window, -1)
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, -1)[:, :h, :w]


def get_rel_pos(q_size: int, k_size: int, rel_pos):
  """The embedding of every (query, key) offset along one axis.

  A table of another length than 2·max(q_size, k_size)−1 is first resampled to it linearly, as
  torch's `F.interpolate(mode="linear", align_corners=False)`. Offsets are scaled when q_size and
  k_size differ. `rel_pos: f[L,C]` -> f[q_size,k_size,C].
  """
  length, max_rel_dist = rel_pos.shape[0], 2 * max(q_size, k_size) - 1
  if length != max_rel_dist:
    scale = np.float32(length / max_rel_dist)
    source = np.maximum((np.arange(max_rel_dist, dtype=np.float32) + 0.5) * scale - 0.5, 0)
    low = source.astype(np.int64)
    high = np.minimum(low + 1, length - 1)
    frac = (source - low).astype(np.float32)[:, None]
    rel_pos = rel_pos[low] * (1 - frac) + rel_pos[high] * frac
  # In float32 and truncated, like the official `.long()` of float32 coordinates.
  q_scale, k_scale = np.float32(max(k_size / q_size, 1.0)), np.float32(max(q_size / k_size, 1.0))
  q_coords = np.arange(q_size, dtype=np.float32)[:, None] * q_scale
  k_coords = np.arange(k_size, dtype=np.float32)[None, :] * k_scale
  offsets = (q_coords - k_coords) + np.float32(k_size - 1) * k_scale
  return rel_pos[offsets.astype(np.int64)]


def add_decomposed_rel_pos(attn, q, rel_pos_h, rel_pos_w, q_size, k_size):
  """Adds to attention logits the query's product with its row and column offset embeddings.

  Args:
    attn: f[...,qh*qw,kh*kw], logits.
    q: f[...,qh*qw,C], the queries (unscaled).
    rel_pos_h, rel_pos_w: f[Lh,C], f[Lw,C], tables of row and column offsets.
    q_size, k_size: (qh, qw), (kh, kw).
  Returns:
    f[...,qh*qw,kh*kw].
  """
  (qh, qw), (kh, kw) = q_size, k_size
  rh, rw = get_rel_pos(qh, kh, rel_pos_h), get_rel_pos(qw, kw, rel_pos_w)
  lead = q.shape[:-2]
  r_q = q.reshape(*lead, qh, qw, q.shape[-1])
  rel_h = jnp.einsum("...hwc,hkc->...hwk", r_q, rh)
  rel_w = jnp.einsum("...hwc,wkc->...hwk", r_q, rw)
  attn = attn.reshape(*lead, qh, qw, kh, kw) + rel_h[..., :, None] + rel_w[..., None, :]
  return attn.reshape(*lead, qh * qw, kh * kw)


class MLPBlock(nn.Module):
  """Linear -> activation -> Linear back to the input width. `x: f[...,D]` -> f[...,D]."""

  hidden: int
  activation: Callable = gelu
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    y = self.activation(nn.Dense(self.hidden, dtype=self.dtype, name="lin1")(x))
    return nn.Dense(x.shape[-1], dtype=self.dtype, name="lin2")(y)


class Attention(nn.Module):
  """Multi-head self-attention over a grid, optionally with decomposed relative positions.

  `x: f[B,H,W,C]` -> f[B,H,W,C]. The tables `rel_pos_h`, `rel_pos_w: f32[2*input_size-1,C/heads]`
  are resampled when the grid is not `input_size` wide.
  """

  heads: int
  input_size: int
  use_rel_pos: bool = True
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    b, h, w, c = x.shape
    head_dim = c // self.heads
    qkv = nn.Dense(3 * c, dtype=self.dtype, name="qkv")(x).reshape(b, h * w, 3, self.heads, -1)
    q, k, v = qkv.transpose(2, 0, 3, 1, 4)  # each [B,heads,HW,head_dim]
    attn = jnp.einsum("bnqc,bnkc->bnqk", q * head_dim**-0.5, k)
    if self.use_rel_pos:
      shape = (2 * self.input_size - 1, head_dim)
      rel_pos_h = self.param("rel_pos_h", nn.initializers.zeros, shape, jnp.float32)
      rel_pos_w = self.param("rel_pos_w", nn.initializers.zeros, shape, jnp.float32)
      attn = add_decomposed_rel_pos(
        attn, q, rel_pos_h.astype(self.dtype), rel_pos_w.astype(self.dtype), (h, w), (h, w)
      )
    attn = jax.nn.softmax(attn.astype(jnp.float32), axis=-1).astype(self.dtype)
    x = jnp.einsum("bnqk,bnkc->bqnc", attn, v).reshape(b, h, w, c)
    return nn.Dense(c, dtype=self.dtype, name="proj")(x)


class Block(nn.Module):
  """Pre-norm transformer block; `window` 0 attends globally, else within windows.

  `x: f[B,H,W,C]` -> f[B,H,W,C]; `input_size` is H (= W) and sizes the global tables.
  """

  heads: int
  mlp_dim: int
  window: int
  input_size: int
  use_rel_pos: bool = True
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    shortcut = x
    x = layer_norm(1e-6, self.dtype, "norm1")(x)
    if self.window > 0:
      hw = x.shape[1:3]
      x, pad_hw = window_partition(x, self.window)
    attention_size = self.window if self.window > 0 else self.input_size
    x = Attention(self.heads, attention_size, self.use_rel_pos, self.dtype, name="attn")(x)
    if self.window > 0:
      x = window_unpartition(x, self.window, pad_hw, hw)
    x = shortcut + x
    mlp = MLPBlock(self.mlp_dim, gelu, self.dtype, name="mlp")
    return x + mlp(layer_norm(1e-6, self.dtype, "norm2")(x))


class ImageEncoder(nn.Module):
  """`images: f[B,image_size,image_size,3]`, normalised (see `preprocess`) ->
  f32[B,S,S,prompt_dim] with S = `config.embedding_size`."""

  config: SamConfig
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, images):
    cfg = self.config
    p, s, width = cfg.patch_size, cfg.embedding_size, cfg.encoder_width
    x = nn.Conv(
      width, (p, p), strides=(p, p), padding="VALID", dtype=self.dtype, name="patch_embed"
    )(images)
    pos_embed = self.param("pos_embed", nn.initializers.zeros, (1, s, s, width), jnp.float32)
    x = x + pos_embed.astype(self.dtype)
    for i in range(cfg.encoder_depth):
      x = Block(
        cfg.encoder_heads,
        int(width * cfg.mlp_ratio),
        0 if i in cfg.global_attention_indexes else cfg.encoder_window,
        s,
        cfg.use_rel_pos,
        self.dtype,
        name=f"blocks_{i}",
      )(x)
    conv = functools.partial(nn.Conv, cfg.prompt_dim, use_bias=False, dtype=self.dtype)
    x = conv((1, 1), name="neck_0")(x)
    x = layer_norm(1e-6, self.dtype, "neck_1")(x)
    x = conv((3, 3), padding=((1, 1), (1, 1)), name="neck_2")(x)
    return layer_norm(1e-6, self.dtype, "neck_3")(x).astype(jnp.float32)

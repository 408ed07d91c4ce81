"""SAM's two-way transformer: prompt tokens and image embedding attend to each other.

The maths of `segment_anything.modeling.transformer`: per block, token self-attention,
token-to-image cross-attention, an MLP on the tokens, image-to-token cross-attention, each followed
by a LayerNorm (eps 1e-5); a final token-to-image attention and norm. The cross-attentions project
to `D / downsample_rate` channels.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from segjax.models.sam.image_encoder import MLPBlock, layer_norm


class Attention(nn.Module):
  """Multi-head attention with projections to `D / downsample_rate` channels.

  `q: f[B,Nq,D]`, `k: f[B,Nk,D]`, `v: f[B,Nk,D]` -> f[B,Nq,D].
  """

  heads: int
  downsample_rate: int = 1
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, q, k, v):
    b, nq, dim = q.shape
    internal = dim // self.downsample_rate

    def project(x, name):
      x = nn.Dense(internal, dtype=self.dtype, name=name)(x)
      return x.reshape(b, x.shape[1], self.heads, -1)

    q, k, v = project(q, "q_proj"), project(k, "k_proj"), project(v, "v_proj")
    attn = jnp.einsum("bqhc,bkhc->bhqk", q, k) / math.sqrt(q.shape[-1])
    attn = jax.nn.softmax(attn.astype(jnp.float32), axis=-1).astype(self.dtype)
    out = jnp.einsum("bhqk,bkhc->bqhc", attn, v).reshape(b, nq, internal)
    return nn.Dense(dim, dtype=self.dtype, name="out_proj")(out)


class TwoWayAttentionBlock(nn.Module):
  """`(queries f[B,N,D], keys f[B,HW,D], query_pe f[B,N,D], key_pe f[B,HW,D])` ->
  `(queries, keys)`; the first block's self-attention skips the positional encoding."""

  heads: int
  mlp_dim: int
  downsample_rate: int = 2
  skip_first_layer_pe: bool = False
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, queries, keys, query_pe, key_pe):
    def norm(name):
      return layer_norm(1e-5, self.dtype, name)

    def cross_attention(name):
      return Attention(self.heads, self.downsample_rate, self.dtype, name=name)

    self_attn = Attention(self.heads, dtype=self.dtype, name="self_attn")
    if self.skip_first_layer_pe:
      queries = self_attn(queries, queries, queries)
    else:
      q = queries + query_pe
      queries = queries + self_attn(q, q, queries)
    queries = norm("norm1")(queries)

    q, k = queries + query_pe, keys + key_pe
    queries = norm("norm2")(queries + cross_attention("cross_attn_token_to_image")(q, k, keys))
    mlp = MLPBlock(self.mlp_dim, jax.nn.relu, self.dtype, name="mlp")
    queries = norm("norm3")(queries + mlp(queries))

    q, k = queries + query_pe, keys + key_pe
    keys = norm("norm4")(keys + cross_attention("cross_attn_image_to_token")(k, q, queries))
    return queries, keys


class TwoWayTransformer(nn.Module):
  """`(image_embedding f[B,H,W,D], image_pe f[B,H,W,D], point_embedding f[B,N,D])` ->
  `(queries f[B,N,D], keys f[B,H*W,D])`; `point_embedding` is also the queries' positional
  encoding."""

  depth: int
  heads: int
  mlp_dim: int
  downsample_rate: int = 2
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, image_embedding, image_pe, point_embedding):
    b, h, w, d = image_embedding.shape
    keys = image_embedding.reshape(b, h * w, d).astype(self.dtype)
    key_pe = image_pe.reshape(b, h * w, d).astype(self.dtype)
    query_pe = point_embedding.astype(self.dtype)
    queries = query_pe
    for i in range(self.depth):
      queries, keys = TwoWayAttentionBlock(
        self.heads,
        self.mlp_dim,
        self.downsample_rate,
        skip_first_layer_pe=i == 0,
        dtype=self.dtype,
        name=f"layers_{i}",
      )(queries, keys, query_pe, key_pe)
    q, k = queries + query_pe, keys + key_pe
    final = Attention(
      self.heads, self.downsample_rate, self.dtype, name="final_attn_token_to_image"
    )
    queries = layer_norm(1e-5, self.dtype, "norm_final_attn")(queries + final(q, k, keys))
    return queries, keys

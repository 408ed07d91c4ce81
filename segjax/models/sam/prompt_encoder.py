"""SAM's prompt encoder: points and box corners as random Fourier features plus learned type
embeddings (sparse), a mask prompt as a down-sampled embedding (dense).

The maths of `segment_anything.modeling.prompt_encoder`, including its quirk that points without a
box get one extra padding point (label -1), whose embedding is `not_a_point_embed`.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from segjax.models.sam.config import SamConfig
from segjax.models.sam.image_encoder import gelu, layer_norm


class PositionEmbeddingRandom(nn.Module):
  """Random Fourier features of positions (Tancik et al., 2020).

  The fixed matrix `positional_encoding_gaussian_matrix: f32[2,features]` lives in the `buffers`
  collection, so that no optimiser changes it. `coords: f[...,2]` xy in [0,1] ->
  f32[...,2*features], the sines then the cosines of 2π·(2·coords−1)·G.
  """

  features: int

  @nn.compact
  def __call__(self, coords):
    matrix = self.variable(
      "buffers",
      "positional_encoding_gaussian_matrix",
      lambda: jax.random.normal(self.make_rng("params"), (2, self.features)),
    ).value
    coords = 2 * coords.astype(jnp.float32) - 1
    # Products and a sum rather than a matmul: a TF32 matmul on a GPU would round the phases,
    # which reach tens of radians.
    coords = coords[..., :1] * matrix[0] + coords[..., 1:] * matrix[1]
    coords = 2 * np.pi * coords
    return jnp.concatenate([jnp.sin(coords), jnp.cos(coords)], axis=-1)


class PromptEncoder(nn.Module):
  """Embeds the prompts of one prompt set per image.

  `__call__(points f[B,N,2] | None, labels i32[B,N] | None, boxes f[B,4] | None,
  masks f[B,4S,4S,1] | None)` -> `(sparse f32[B,N',D], dense f[B,S,S,D])`, points and boxes (x0,
  y0, x1, y1) in pixels of the padded input image, labels 1 positive, 0 negative, -1 padding.
  N' = N + 1 (the padding point) for points without boxes, N + 2 with boxes.
  """

  config: SamConfig
  dtype: jnp.dtype = jnp.float32

  def setup(self):
    d, chans = self.config.prompt_dim, self.config.mask_in_chans
    self.pe_layer = PositionEmbeddingRandom(d // 2)
    embedding = nn.initializers.normal(1.0)  # as torch's nn.Embedding
    # Negative point, positive point, box top-left corner, box bottom-right corner.
    self.point_embeddings = [
      self.param(f"point_embeddings_{i}", embedding, (1, d), jnp.float32) for i in range(4)
    ]
    self.not_a_point_embed = self.param("not_a_point_embed", embedding, (1, d), jnp.float32)
    self.no_mask_embed = self.param("no_mask_embed", embedding, (1, d), jnp.float32)
    self.mask_downscaling_0 = nn.Conv(chans // 4, (2, 2), 2, "VALID", dtype=self.dtype)
    self.mask_downscaling_1 = layer_norm(1e-6, self.dtype, None)
    self.mask_downscaling_3 = nn.Conv(chans, (2, 2), 2, "VALID", dtype=self.dtype)
    self.mask_downscaling_4 = layer_norm(1e-6, self.dtype, None)
    self.mask_downscaling_6 = nn.Conv(d, (1, 1), dtype=self.dtype)

  def dense_pe(self):
    """The positional encoding of every cell of the image embedding: f32[S,S,D]."""
    s = self.config.embedding_size
    centres = (jnp.arange(s, dtype=jnp.float32) + 0.5) / s
    y, x = jnp.meshgrid(centres, centres, indexing="ij")
    return self.pe_layer(jnp.stack([x, y], axis=-1))

  def embed_points(self, points, labels, pad: bool):
    """`points: f[B,N,2]`, `labels: i[B,N]` -> f32[B,N+pad,D]."""
    points = points.astype(jnp.float32) + 0.5  # pixel centres
    if pad:
      b = points.shape[0]
      points = jnp.concatenate([points, jnp.zeros((b, 1, 2), jnp.float32)], axis=1)
      labels = jnp.concatenate([labels, jnp.full((b, 1), -1, labels.dtype)], axis=1)
    embedding = self.pe_layer(points / self.config.image_size)
    labels = labels[..., None]
    embedding = jnp.where(labels == -1, self.not_a_point_embed, embedding)
    embedding = embedding + jnp.where(labels == 0, self.point_embeddings[0], 0)
    return embedding + jnp.where(labels == 1, self.point_embeddings[1], 0)

  def embed_boxes(self, boxes):
    """`boxes: f[B,4]` -> f32[B,2,D], one embedding per corner."""
    corners = (boxes.astype(jnp.float32) + 0.5).reshape(-1, 2, 2)
    embedding = self.pe_layer(corners / self.config.image_size)
    return embedding + jnp.concatenate(self.point_embeddings[2:], axis=0)

  def embed_masks(self, masks):
    """`masks: f[B,4S,4S,1]` (logits) -> f[B,S,S,D]."""
    x = gelu(self.mask_downscaling_1(self.mask_downscaling_0(masks)))
    x = gelu(self.mask_downscaling_4(self.mask_downscaling_3(x)))
    return self.mask_downscaling_6(x)

  def __call__(self, points, labels, boxes, masks):
    d, s = self.config.prompt_dim, self.config.embedding_size
    batch = next((x.shape[0] for x in (points, boxes, masks) if x is not None), 1)
    sparse = [jnp.zeros((batch, 0, d), jnp.float32)]
    if points is not None:
      sparse.append(self.embed_points(points, labels, pad=boxes is None))
    if boxes is not None:
      sparse.append(self.embed_boxes(boxes))
    if masks is not None:
      dense = self.embed_masks(masks)
    else:
      if self.is_initializing():  # creates the down-sampler's parameters, used by mask prompts
        self.embed_masks(jnp.zeros((1, 4 * s, 4 * s, 1), self.dtype))
      dense = jnp.broadcast_to(self.no_mask_embed.astype(self.dtype), (batch, s, s, d))
    return jnp.concatenate(sparse, axis=1), dense

"""SAM's mask decoder: output tokens and prompt tokens through the two-way transformer, then
masks as products of per-token hypernetwork outputs with an up-sampled image embedding.

The maths of `segment_anything.modeling.mask_decoder`, for one prompt set per image: the official
code repeats one image's embedding for a batch of prompt sets instead.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from segjax.models.layers import depth_to_space
from segjax.models.sam.config import SamConfig
from segjax.models.sam.image_encoder import gelu, layer_norm
from segjax.models.sam.transformer import TwoWayTransformer


class ConvTranspose2x(nn.Module):
  """A 2x2 stride-2 transposed convolution, computed as a matmul to 4·features channels and a
  depth-to-space (XLA differentiates the matmul far faster; see `layers.Upsample2x`).

  `kernel: f32[2,2,Cin,features]` is torch's ConvTranspose2d weight [Cin,Cout,2,2] transposed
  (2, 3, 0, 1). `x: f[B,H,W,Cin]` -> f[B,2H,2W,features].
  """

  features: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    cin = x.shape[-1]
    init = nn.initializers.lecun_normal(in_axis=2, out_axis=3)
    kernel = self.param("kernel", init, (2, 2, cin, self.features), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
    # Columns ordered (row, column, feature), as depth_to_space reads them.
    kernel = kernel.transpose(2, 0, 1, 3).reshape(cin, 4 * self.features).astype(self.dtype)
    x = depth_to_space(x.astype(self.dtype) @ kernel, 2)
    return x + bias.astype(self.dtype)


class MLP(nn.Module):
  """`num_layers` Linear layers with ReLU between them. `x: f[...,C]` -> f[...,features]."""

  hidden: int
  features: int
  num_layers: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    for i in range(self.num_layers):
      last = i == self.num_layers - 1
      x = nn.Dense(self.features if last else self.hidden, dtype=self.dtype, name=f"layers_{i}")(x)
      x = x if last else jax.nn.relu(x)
    return x


class MaskDecoder(nn.Module):
  """`(image_embeddings f[B,S,S,D], image_pe f[S,S,D], sparse f[B,N,D], dense f[B,S,S,D],
  multimask_output)` -> `(masks f32[B,K,4S,4S], iou_predictions f32[B,K])`: K =
  `num_multimask_outputs` masks 1.. when `multimask_output`, else K = 1, mask 0."""

  config: SamConfig
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, image_embeddings, image_pe, sparse, dense, multimask_output: bool):
    cfg = self.config
    d, num_masks = cfg.prompt_dim, cfg.num_multimask_outputs + 1
    embedding = nn.initializers.normal(1.0)
    iou_token = self.param("iou_token", embedding, (1, d), jnp.float32)
    mask_tokens = self.param("mask_tokens", embedding, (num_masks, d), jnp.float32)
    b, s = image_embeddings.shape[:2]
    output_tokens = jnp.concatenate([iou_token, mask_tokens], axis=0)
    # Without prompts, the prompt encoder's batch is 1.
    sparse = jnp.broadcast_to(sparse.astype(jnp.float32), (b, *sparse.shape[1:]))
    tokens = jnp.concatenate([jnp.broadcast_to(output_tokens, (b, 1 + num_masks, d)), sparse], 1)
    src = image_embeddings + dense
    hs, src = TwoWayTransformer(
      cfg.decoder_depth,
      cfg.decoder_heads,
      cfg.decoder_mlp_dim,
      cfg.attention_downsample_rate,
      self.dtype,
      name="transformer",
    )(src, jnp.broadcast_to(image_pe, src.shape), tokens)

    x = ConvTranspose2x(d // 4, self.dtype, name="output_upscaling_0")(src.reshape(b, s, s, d))
    x = gelu(layer_norm(1e-6, self.dtype, "output_upscaling_1")(x))
    x = gelu(ConvTranspose2x(d // 8, self.dtype, name="output_upscaling_3")(x))
    hyper_in = jnp.stack(
      [
        MLP(d, d // 8, 3, self.dtype, name=f"output_hypernetworks_mlps_{i}")(hs[:, 1 + i])
        for i in range(num_masks)
      ],
      axis=1,
    )
    masks = jnp.einsum("bmc,bhwc->bmhw", hyper_in, x)
    iou = MLP(
      cfg.iou_head_hidden, num_masks, cfg.iou_head_depth, self.dtype, name="iou_prediction_head"
    )(hs[:, 0])
    chosen = slice(1, None) if multimask_output else slice(0, 1)
    return masks[:, chosen].astype(jnp.float32), iou[:, chosen].astype(jnp.float32)

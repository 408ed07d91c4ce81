"""Segment Anything (Kirillov et al., 2023): image encoder, prompt encoder and mask decoder."""

import flax.linen as nn
import jax.numpy as jnp

from segjax.models.sam.config import PIXEL_MEAN, PIXEL_STD, SamConfig
from segjax.models.sam.image_encoder import ImageEncoder
from segjax.models.sam.mask_decoder import MaskDecoder
from segjax.models.sam.prompt_encoder import PromptEncoder


def preprocess(images, image_size: int):
  """SAM's input: RGB normalised with `PIXEL_MEAN`/`PIXEL_STD`, zero-padded at the bottom right.

  `images: f[B,H,W,3]` in [0, 255], H, W <= image_size (resized so that the longer side is
  image_size) -> f32[B,image_size,image_size,3].
  """
  x = (images.astype(jnp.float32) - jnp.array(PIXEL_MEAN)) / jnp.array(PIXEL_STD)
  h, w = images.shape[1:3]
  return jnp.pad(x, ((0, 0), (0, image_size - h), (0, image_size - w), (0, 0)))


class Sam(nn.Module):
  """SAM with one prompt set per image; the image is encoded once, prompts are decoded cheaply.

  Submodules `image_encoder`, `prompt_encoder` and `mask_decoder`; their variable paths mirror the
  official state dict (see `segjax.convert.sam`). Variables: `params`, and in `buffers` the fixed
  random matrix of the prompts' positional encoding. All shapes are static: pad points to a fixed
  N with label -1 to compile once (as in the official model, a padding point is not a no-op).

  Attributes:
    config: the sizes.
    dtype: compute dtype; parameters are float32, outputs float32.
  """

  config: SamConfig
  dtype: jnp.dtype = jnp.float32

  def setup(self):
    self.image_encoder = ImageEncoder(self.config, self.dtype)
    self.prompt_encoder = PromptEncoder(self.config, self.dtype)
    self.mask_decoder = MaskDecoder(self.config, self.dtype)

  def encode_image(self, images):
    """`images: f[B,image_size,image_size,3]` from `preprocess` -> f32[B,S,S,prompt_dim]."""
    return self.image_encoder(images)

  def decode(
    self,
    image_embeddings,
    points=None,
    point_labels=None,
    boxes=None,
    mask_inputs=None,
    multimask_output: bool = True,
  ):
    """Masks for one prompt set per image.

    Args:
      image_embeddings: f32[B,S,S,D] from `encode_image`.
      points: f[B,N,2] xy in pixels of the padded input image, or None.
      point_labels: i32[B,N]: 1 positive, 0 negative, -1 padding; with `points`.
      boxes: f[B,4] (x0, y0, x1, y1) in input pixels, or None.
      mask_inputs: f[B,4S,4S,1] mask logits (e.g. a previous `low_res_masks`), or None.
      multimask_output: 3 masks for an ambiguous prompt, else 1.
    Returns:
      `(low_res_masks f32[B,K,4S,4S], iou_predictions f32[B,K])`, K = 3 or 1.
    """
    sparse, dense = self.prompt_encoder(points, point_labels, boxes, mask_inputs)
    return self.mask_decoder(
      image_embeddings, self.prompt_encoder.dense_pe(), sparse, dense, multimask_output
    )

  def __call__(
    self,
    images,
    points=None,
    point_labels=None,
    boxes=None,
    mask_inputs=None,
    multimask_output: bool = True,
  ):
    """`encode_image` then `decode`; initialises every variable."""
    return self.decode(
      self.encode_image(images), points, point_labels, boxes, mask_inputs, multimask_output
    )

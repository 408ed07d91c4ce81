"""A tiny interactive SAM for tests: its sizes, and random variables drawn without compiling
JAX's initialisers (which take many seconds on CPU)."""

import jax
import jax.numpy as jnp

from segjax.models.numpy_init import numpy_variables as draw

TINY = dict(
  image_size=64,
  patch_size=8,
  encoder_depth=2,
  encoder_width=32,
  encoder_heads=2,
  encoder_window=4,
  global_attention_indexes=(1,),
  prompt_dim=32,
  decoder_depth=1,
  decoder_mlp_dim=64,
  iou_head_hidden=32,
  mask_in_chans=8,
)


def numpy_variables(model, images):
  """Random variables of `model` for `images`, drawn without compiling JAX's initialisers."""
  variables = draw(lambda: model.init(jax.random.key(0), images, train=False))
  return jax.tree.map(jnp.asarray, variables)

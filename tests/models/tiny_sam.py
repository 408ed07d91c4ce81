"""A tiny interactive SAM for tests: its sizes, and random variables drawn without compiling
JAX's initialisers (which take many seconds on CPU)."""

import jax
import jax.numpy as jnp
import numpy as np

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
  """Random variables of `model` drawn by numpy (JAX's initialisers take many seconds to compile
  on CPU): norm scales 1, biases 0, other arrays N(0, 1/fan_in)."""
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), images, train=False))
  rng = np.random.default_rng(0)

  def draw(path, leaf):
    name = path[-1].key
    if name in ("scale", "bias"):
      return jnp.full(leaf.shape, float(name == "scale"), jnp.float32)
    std = 1 / np.sqrt(np.prod(leaf.shape[:-1])) if leaf.ndim > 1 else 1.0
    return jnp.asarray(rng.normal(0, std, leaf.shape).astype(np.float32))

  return jax.tree_util.tree_map_with_path(draw, shapes)

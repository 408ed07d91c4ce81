"""Official Segment Anything state dicts (`sam_vit_{b,l,h}_*.pth`) -> `SamConfig` and variables of
`segjax.models.sam.Sam`.

The Flax variable paths mirror the torch keys: a module index `.N` becomes a `_N` suffix
(`blocks.3` -> `blocks_3`), Linear and Conv weights become `kernel` (transposed to [I,O] and
[kh,kw,I,O]; ConvTranspose2d's [I,O,kh,kw] too), LayerNorm weights `scale`, an nn.Embedding's
weight a parameter named after the embedding (`iou_token`), and `patch_embed.proj` is
`patch_embed`. The positional encoding's Gaussian matrix, a torch buffer, goes to the `buffers`
collection.
"""

import os
import re
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from segjax.convert.torch_files import load_state_dict
from segjax.errors import InputError
from segjax.models.sam import PIXEL_MEAN, PIXEL_STD, Sam, SamConfig

# The official decoder always has 8 heads, which shapes cannot tell.
DECODER_HEADS = 8
_NORMALISATION = {"pixel_mean": PIXEL_MEAN, "pixel_std": PIXEL_STD}
_EMBEDDINGS = re.compile(
  r"(iou_token|mask_tokens|no_mask_embed|not_a_point_embed|point_embeddings_\d+)$"
)
_INDEXED = re.compile(r"_(\d+)$")


def load(source: str | os.PathLike | Mapping) -> tuple[SamConfig, dict]:
  """`(config, variables)` of an official SAM checkpoint: a file (any `torch.save` format or
  .safetensors, read without torch) or a state dict of numpy arrays or torch tensors.

  The config is read from the tensor shapes (`infer_config`), the variables converted by
  `from_torch`. Raises `InputError` naming a missing, unexpected or misshapen key.
  """
  if isinstance(source, Mapping):
    state_dict = {k: _numpy(v) for k, v in source.items()}
  else:
    state_dict = load_state_dict(source)
  try:
    config = infer_config(state_dict)
    return config, from_torch(state_dict, config)
  except InputError as error:
    if isinstance(source, Mapping):
      raise
    raise InputError(f"{source}: {error}") from error


def infer_config(state_dict: Mapping[str, np.ndarray]) -> SamConfig:
  """The `SamConfig` of a state dict, from its tensor shapes.

  Read: image size, patch size, ViT depth, width, heads (width / the relative-position tables'
  head dim), window and global blocks (from the tables' lengths), MLP ratio, prompt dim, decoder
  depth, MLP width and attention down-sampling, number of masks, IoU head depth and width, mask
  prompt channels. Assumed: `DECODER_HEADS` decoder heads, 3 input channels, biases on q/k/v.
  When every block attends globally the window is set to the embedding size, which is the same.
  """

  def shape(key):
    if key not in state_dict:
      raise InputError(f"The state dict has no {key!r}: is it a Segment Anything checkpoint?")
    return np.shape(state_dict[key])

  def count(prefix):
    indexes = {int(m[1]) for k in state_dict if (m := re.match(rf"{re.escape(prefix)}(\d+)\.", k))}
    return max(indexes) + 1 if indexes else 0

  width, _, patch, _ = shape("image_encoder.patch_embed.proj.weight")
  size = shape("image_encoder.pos_embed")[1]
  depth = count("image_encoder.blocks.")
  if "image_encoder.blocks.0.attn.rel_pos_h" not in state_dict:
    raise InputError(
      "The state dict has no relative-position tables (image_encoder.blocks.0.attn.rel_pos_h), "
      "whose shape tells the number of heads: is it a Segment Anything checkpoint?"
    )
  head_dim = shape("image_encoder.blocks.0.attn.rel_pos_h")[1]
  sides = [(shape(f"image_encoder.blocks.{i}.attn.rel_pos_h")[0] + 1) // 2 for i in range(depth)]
  windows = {side for side in sides if side != size}
  if len(windows) > 1:
    raise InputError(f"The windowed blocks have windows of different sizes {sorted(windows)}.")
  prompt_dim = shape("image_encoder.neck.0.weight")[0]
  internal = shape("mask_decoder.transformer.final_attn_token_to_image.q_proj.weight")[0]
  iou_head_depth = count("mask_decoder.iou_prediction_head.layers.")
  config = SamConfig(
    image_size=size * patch,
    patch_size=patch,
    encoder_depth=depth,
    encoder_width=width,
    encoder_heads=width // head_dim,
    encoder_window=windows.pop() if windows else size,
    global_attention_indexes=tuple(i for i, side in enumerate(sides) if side == size),
    mlp_ratio=shape("image_encoder.blocks.0.mlp.lin1.weight")[0] / width,
    prompt_dim=prompt_dim,
    decoder_depth=count("mask_decoder.transformer.layers."),
    decoder_heads=DECODER_HEADS,
    decoder_mlp_dim=shape("mask_decoder.transformer.layers.0.mlp.lin1.weight")[0],
    attention_downsample_rate=prompt_dim // internal,
    num_multimask_outputs=shape("mask_decoder.mask_tokens.weight")[0] - 1,
    iou_head_depth=iou_head_depth,
    iou_head_hidden=shape("mask_decoder.iou_prediction_head.layers.0.weight")[0]
    if iou_head_depth > 1
    else SamConfig.iou_head_hidden,
    mask_in_chans=shape("prompt_encoder.mask_downscaling.3.weight")[0],
  )
  if width % head_dim or internal % DECODER_HEADS:
    raise InputError(
      f"Width {width} is not a multiple of the head dim {head_dim}, or the decoder's attention "
      f"width {internal} not of {DECODER_HEADS} heads: is it a Segment Anything checkpoint?"
    )
  return config


def from_torch(state_dict: Mapping[str, np.ndarray], config: SamConfig) -> dict[str, dict]:
  """`{"params": ..., "buffers": ...}` of `Sam(config)` from an official state dict.

  Every variable must be filled exactly once with the right shape; `pixel_mean`/`pixel_std`, if
  present, must be SAM's constants. Raises `InputError` naming the offending keys.
  """
  model = Sam(config)
  expected = jax.eval_shape(
    lambda: model.init(jax.random.key(0), jnp.zeros((1, config.image_size, config.image_size, 3)))
  )
  targets = {}  # torch key -> (variable path, axes permutation to Flax, Flax shape)
  for path, leaf in jax.tree_util.tree_flatten_with_path(expected)[0]:
    path = tuple(k.key for k in path)
    key, axes = _torch_key(path[1:], leaf.ndim)
    targets[key] = path, axes, leaf.shape
  missing = sorted(targets.keys() - state_dict.keys())
  unexpected = sorted(state_dict.keys() - targets.keys() - _NORMALISATION.keys())
  if missing or unexpected:
    raise InputError(
      f"The state dict does not fit SAM {_describe(config)}: missing {missing[:6]}"
      f"{' ...' if len(missing) > 6 else ''}, unexpected {unexpected[:6]}"
      f"{' ...' if len(unexpected) > 6 else ''}."
    )
  for key, constant in _NORMALISATION.items():
    if key in state_dict and not np.allclose(np.ravel(state_dict[key]), constant):
      raise InputError(f"{key} is {np.ravel(state_dict[key])}, not SAM's {constant}.")
  variables: dict = {}
  for key, (path, axes, flax_shape) in targets.items():
    array = np.asarray(state_dict[key], np.float32)
    array = array.transpose(axes) if axes else array
    if array.shape != flax_shape:
      torch_shape = tuple(flax_shape[i] for i in np.argsort(axes)) if axes else flax_shape
      raise InputError(
        f"{key} has shape {np.shape(state_dict[key])} in the state dict but SAM "
        f"{_describe(config)} needs {torch_shape}."
      )
    node = variables
    for part in path[:-1]:
      node = node.setdefault(part, {})
    node[path[-1]] = array
  return variables


def _torch_key(path: tuple[str, ...], ndim: int) -> tuple[str, tuple[int, ...] | None]:
  """The torch key of a Flax variable path (without its collection), and the axes that carry the
  torch tensor to the Flax layout (None: the same)."""
  *modules, leaf = path
  names = ["patch_embed.proj" if m == "patch_embed" else _INDEXED.sub(r".\1", m) for m in modules]
  axes = None
  if leaf == "kernel":
    leaf = "weight"
    if ndim == 2:
      axes = (1, 0)
    elif modules[-1].startswith("output_upscaling"):  # ConvTranspose2d: [I,O,kh,kw]
      axes = (2, 3, 0, 1)
    else:
      axes = (2, 3, 1, 0)
  elif leaf == "scale":
    leaf = "weight"
  elif _EMBEDDINGS.match(leaf):
    leaf = _INDEXED.sub(r".\1", leaf) + ".weight"
  return ".".join([*names, leaf]), axes


def _describe(config: SamConfig) -> str:
  return (
    f"(image {config.image_size}, width {config.encoder_width}, depth {config.encoder_depth}, "
    f"prompt dim {config.prompt_dim}, read from the shapes)"
  )


def _numpy(value) -> np.ndarray:
  """A torch tensor (on any device, with or without grad) or an array as a numpy array."""
  if hasattr(value, "detach"):
    value = value.detach().cpu().float()  # numpy has no bfloat16; SAM's tensors are all floats
  return np.asarray(value)

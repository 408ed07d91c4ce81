"""The official Segment Anything model (`segment_anything` 1.0), the reference, with random weights.

`import segment_anything` runs its package `__init__`, which imports torchvision, not importable
next to a CPU-only torch; the `modeling` subpackage and `build_sam` need torch alone, so they are
imported under a bare package object instead.
"""

import contextlib
import functools
import importlib.util
import sys
import types

import torch
from torch import nn

from segjax.models.sam import SamConfig

_spec = importlib.util.find_spec("segment_anything")  # does not run the package's __init__
if "segment_anything" not in sys.modules:
  _package = types.ModuleType("segment_anything")
  _package.__path__ = list(_spec.submodule_search_locations)
  _package.__spec__ = _spec
  sys.modules["segment_anything"] = _package

from segment_anything.build_sam import sam_model_registry  # noqa: E402
from segment_anything.modeling import (  # noqa: E402
  ImageEncoderViT,
  MaskDecoder,
  PromptEncoder,
  Sam,
  TwoWayTransformer,
)
from segment_anything.modeling.common import LayerNorm2d  # noqa: E402
from segment_anything.modeling.image_encoder import get_rel_pos  # noqa: E402

__all__ = ["build", "get_rel_pos", "one_thread", "randomize", "sam_model_registry"]


def build(config) -> Sam:
  """The official `Sam` with the sizes of a `segjax.models.sam.SamConfig`, as `build_sam` does."""
  s = config.embedding_size
  return Sam(
    image_encoder=ImageEncoderViT(
      img_size=config.image_size,
      patch_size=config.patch_size,
      embed_dim=config.encoder_width,
      depth=config.encoder_depth,
      num_heads=config.encoder_heads,
      mlp_ratio=config.mlp_ratio,
      out_chans=config.prompt_dim,
      norm_layer=functools.partial(nn.LayerNorm, eps=1e-6),
      use_rel_pos=config.use_rel_pos,
      rel_pos_zero_init=False,
      window_size=config.encoder_window,
      global_attn_indexes=config.global_attention_indexes,
    ),
    prompt_encoder=PromptEncoder(
      embed_dim=config.prompt_dim,
      image_embedding_size=(s, s),
      input_image_size=(config.image_size, config.image_size),
      mask_in_chans=config.mask_in_chans,
    ),
    mask_decoder=MaskDecoder(
      num_multimask_outputs=config.num_multimask_outputs,
      transformer=TwoWayTransformer(
        depth=config.decoder_depth,
        embedding_dim=config.prompt_dim,
        mlp_dim=config.decoder_mlp_dim,
        num_heads=config.decoder_heads,
        attention_downsample_rate=config.attention_downsample_rate,
      ),
      transformer_dim=config.prompt_dim,
      iou_head_depth=config.iou_head_depth,
      iou_head_hidden_dim=config.iou_head_hidden,
    ),
  ).eval()


@torch.no_grad()
def randomize(model: nn.Module, seed: int) -> nn.Module:
  """Draws every parameter and buffer anew (but SAM's pixel mean and std), so that no norm scale
  is 1, no bias or relative position 0: weights N(0, 1/fan_in), norm scales 1 + N(0, 0.3²),
  biases N(0, 0.1²), embeddings and the Gaussian matrix N(0, 1), positions N(0, 0.3²)."""
  generator = torch.Generator().manual_seed(seed)
  for module in model.modules():
    tensors = [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]
    for name, tensor in tensors:
      if name in ("pixel_mean", "pixel_std"):
        continue
      noise = torch.randn(tensor.shape, generator=generator)
      if isinstance(module, nn.LayerNorm | LayerNorm2d):
        noise = 1 + 0.3 * noise if name == "weight" else 0.1 * noise
      elif isinstance(module, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
        noise = noise * tensor[0].numel() ** -0.5 if name == "weight" else 0.1 * noise
      elif not isinstance(module, nn.Embedding) and name != "positional_encoding_gaussian_matrix":
        noise = 0.3 * noise  # pos_embed, rel_pos_h, rel_pos_w
      tensor.copy_(noise)
  return model


@contextlib.contextmanager
def one_thread():
  """Runs torch on one thread: on a 2-core machine, the tiny models' ops took ~80x longer on 2."""
  threads = torch.get_num_threads()
  torch.set_num_threads(1)
  try:
    yield
  finally:
    torch.set_num_threads(threads)


# The tiny SAM the converter and predictor tests compare: 7x7 patches in windows of 4 (the
# windowed blocks pad to 8x8); 8 decoder heads, as `segjax.convert.sam.load` assumes.
CONFIG = SamConfig(
  image_size=112,
  patch_size=16,
  encoder_depth=4,
  encoder_width=64,
  encoder_heads=2,
  encoder_window=4,
  global_attention_indexes=(1, 3),
  prompt_dim=32,
  decoder_depth=2,
  decoder_heads=8,
  decoder_mlp_dim=64,
  num_multimask_outputs=3,
  iou_head_depth=3,
  iou_head_hidden=48,
  mask_in_chans=8,
)

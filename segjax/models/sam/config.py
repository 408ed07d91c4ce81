"""Sizes of a Segment Anything model, with the published ViT-B, ViT-L and ViT-H settings."""

import dataclasses

# SAM normalises RGB pixels in [0, 255] with these, then pads to `image_size` at the bottom right.
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)


@dataclasses.dataclass(frozen=True)
class SamConfig:
  """Every size of SAM (Kirillov et al., 2023); the defaults are those all published models share.

  Attributes:
    image_size: side of the square, padded input image.
    patch_size: side of a ViT patch; the image embedding is `embedding_size` patches wide.
    encoder_depth, encoder_width, encoder_heads: the ViT's blocks, channels and attention heads.
    encoder_window: side of the windows of the windowed-attention blocks.
    global_attention_indexes: the blocks with global attention instead.
    mlp_ratio: hidden width of the ViT's MLPs over `encoder_width`.
    prompt_dim: channels of the image embedding, of the prompt embeddings and of the decoder.
    decoder_depth, decoder_heads, decoder_mlp_dim: the two-way transformer's blocks, heads and MLP
      width.
    attention_downsample_rate: the decoder's cross attentions work in `prompt_dim / rate` channels.
    num_multimask_outputs: masks predicted for an ambiguous prompt (plus one for a single mask).
    iou_head_depth, iou_head_hidden: layers and width of the MLP that predicts mask IoU.
    mask_in_chans: hidden channels of the mask-prompt down-sampler.
    use_rel_pos: decomposed relative positions in the ViT's attention.
  """

  image_size: int = 1024
  patch_size: int = 16
  encoder_depth: int = 12
  encoder_width: int = 768
  encoder_heads: int = 12
  encoder_window: int = 14
  global_attention_indexes: tuple[int, ...] = (2, 5, 8, 11)
  mlp_ratio: float = 4.0
  prompt_dim: int = 256
  decoder_depth: int = 2
  decoder_heads: int = 8
  decoder_mlp_dim: int = 2048
  attention_downsample_rate: int = 2
  num_multimask_outputs: int = 3
  iou_head_depth: int = 3
  iou_head_hidden: int = 256
  mask_in_chans: int = 16
  use_rel_pos: bool = True

  @property
  def embedding_size(self) -> int:
    """Side of the image embedding, in patches."""
    return self.image_size // self.patch_size

  @classmethod
  def vit_b(cls) -> "SamConfig":
    return cls(
      encoder_depth=12, encoder_width=768, encoder_heads=12, global_attention_indexes=(2, 5, 8, 11)
    )

  @classmethod
  def vit_l(cls) -> "SamConfig":
    return cls(
      encoder_depth=24,
      encoder_width=1024,
      encoder_heads=16,
      global_attention_indexes=(5, 11, 17, 23),
    )

  @classmethod
  def vit_h(cls) -> "SamConfig":
    return cls(
      encoder_depth=32,
      encoder_width=1280,
      encoder_heads=16,
      global_attention_indexes=(7, 15, 23, 31),
    )

"""Panoptic-DeepLab (Cheng et al., 2020): a bottom-up panoptic model with static shapes throughout.

One ResNet feeds two DeepLabv3+-style decoders (each: ASPP on the stride-16 features, then fusion
with projections of the stride-8 and stride-4 features). The semantic decoder predicts classes;
the instance decoder predicts a class-agnostic centre heatmap and, per pixel, the offset to its
instance's centre. Sizes are detectron2's `panoptic_deeplab_R_52_os16` (256-wide semantic and
128-wide instance decoders, depthwise-separable 5x5 fusion convolutions); grouping into segments
is `segjax.models.panoptic.postprocess`.
"""

import functools

import flax.linen as nn
import jax.numpy as jnp

from segjax.models import backbones
from segjax.models.deeplab import ASPP, ConvNormReLU, resize_bilinear
from segjax.models.layers import DepthwiseConv, norm_layer


class SeparableConvNormReLU(nn.Module):
  """A depthwise `kernel`x`kernel` conv and a pointwise 1x1 conv, each with norm and ReLU."""

  features: int
  kernel: int = 5
  norm: str = "batch"
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    x = DepthwiseConv(self.kernel, self.dtype, name="depthwise")(x)
    x = nn.relu(norm_layer(self.norm, train=train, dtype=self.dtype, name="depthwise_norm")(x))
    return ConvNormReLU(self.features, 1, norm=self.norm, dtype=self.dtype, name="pointwise")(
      x, train=train
    )


class PanopticDecoder(nn.Module):
  """ASPP on `c5`, up-sampled and fused with a projection of `c3`, then of `c2`.

  `features: {"c2": f[B,H/4,W/4,.], "c3": f[B,H/8,W/8,.], "c5": f[B,h,w,.]}` ->
  f[B,H/4,W/4,features].
  """

  rates: tuple[int, ...]
  aspp_features: int = 256
  project_features: tuple[int, int] = (64, 32)  # for c3, c2
  features: int = 256
  norm: str = "batch"
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, features, *, train: bool):
    x = ASPP(self.rates, self.aspp_features, 0.1, self.norm, self.dtype, name="aspp")(
      features["c5"], train=train
    )
    for level, width in zip(("c3", "c2"), self.project_features, strict=True):
      low = ConvNormReLU(width, norm=self.norm, dtype=self.dtype, name=f"project_{level}")(
        features[level], train=train
      )
      x = jnp.concatenate([resize_bilinear(x, low.shape[1:3]), low], axis=-1)
      x = SeparableConvNormReLU(
        self.features, norm=self.norm, dtype=self.dtype, name=f"fuse_{level}"
      )(x, train=train)
    return x


class PanopticDeepLab(nn.Module):
  """ResNet -> semantic decoder -> class logits; instance decoder -> centre heatmap and offsets.

  Attributes:
    num_classes: semantic classes (stuff and things).
    backbone, output_stride, deep_stem, avg_down, backbone_width: the ResNet
      (`segjax.models.backbones.ResNet`); ASPP rates 6, 12, 18 at output stride 16, doubled at 8.
    semantic_features, instance_features: widths of the two decoders.
    head_features: widths of the (semantic, instance) prediction heads.
    norm, dtype: norm layers ("batch": synchronised) and compute dtype; parameters are float32.

  `images: f[B,H,W,3]`, H and W multiples of 32 ->
  `{"semantic_logits": f32[B,H,W,C], "center": f32[B,H,W], "offset": f32[B,H,W,2]}`;
  offsets are (dy, dx) in input pixels from each pixel to its instance's centre.
  """

  num_classes: int
  backbone: str = "resnet50"
  output_stride: int = 16
  deep_stem: bool = False
  avg_down: bool = False
  backbone_width: int = 64
  aspp_features: int = 256
  semantic_features: int = 256
  instance_features: int = 128
  head_features: tuple[int, int] = (256, 32)
  norm: str = "batch"
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, images, *, train: bool = False):
    height, width = images.shape[1:3]
    if height % 32 or width % 32:
      raise ValueError(
        f"Panoptic-DeepLab needs H and W divisible by 32; got images {images.shape}."
      )
    if self.output_stride not in (8, 16):
      raise ValueError(f"Panoptic-DeepLab output_stride={self.output_stride} is not 8 or 16.")
    rates = tuple(r * 16 // self.output_stride for r in (6, 12, 18))
    features = backbones.backbone_of(self, output_stride=self.output_stride)(images, train=train)
    decoder = functools.partial(
      PanopticDecoder, rates, self.aspp_features, norm=self.norm, dtype=self.dtype
    )
    semantic = decoder(features=self.semantic_features, name="semantic_decoder")(
      features, train=train
    )
    instance = decoder(
      project_features=(32, 16), features=self.instance_features, name="instance_decoder"
    )(features, train=train)

    semantic_width, instance_width = self.head_features
    conv = functools.partial(ConvNormReLU, norm=self.norm, dtype=self.dtype)
    separable = functools.partial(SeparableConvNormReLU, norm=self.norm, dtype=self.dtype)
    semantic = separable(semantic_width, name="semantic_head")(semantic, train=train)
    center = conv(self.instance_features, 3, name="center_head1")(instance, train=train)
    center = conv(instance_width, 3, name="center_head2")(center, train=train)
    offset = separable(instance_width, name="offset_head")(instance, train=train)

    def predict(x, channels, name):
      x = nn.Conv(channels, (1, 1), dtype=self.dtype, name=name)(x)
      return resize_bilinear(x, (height, width)).astype(jnp.float32)

    return {
      "semantic_logits": predict(semantic, self.num_classes, "semantic_predictor"),
      "center": predict(center, 1, "center_predictor")[..., 0],
      # Offsets are predicted in stride-4 pixels: scaled with the up-sampling.
      "offset": predict(offset, 2, "offset_predictor") * (height / semantic.shape[1]),
    }

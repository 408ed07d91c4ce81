"""DeepLabv3 (Chen et al., 2017) and DeepLabv3+ (Chen et al., 2018) on a ResNet backbone.

DeepLabv3 runs atrous spatial pyramid pooling (ASPP) on the last stage; DeepLabv3+ adds a decoder
that fuses the ASPP output, up-sampled to stride 4, with a 48-channel projection of the stride-4
features. Both up-sample the logits bilinearly to the input size.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from segjax.models import backbones
from segjax.models.layers import norm_layer


def resize_bilinear(x, size_hw: tuple[int, int]):
  """`x: f[B,h,w,C]` -> f[B,H,W,C], half-pixel centres (align_corners=False), no antialiasing."""
  if x.shape[1:3] == tuple(size_hw):
    return x
  return jax.image.resize(x, (x.shape[0], *size_hw, x.shape[3]), "bilinear", antialias=False)


class ConvNormReLU(nn.Module):
  features: int
  kernel: int = 1
  dilation: int = 1
  norm: str = "batch"
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    pad = self.dilation * (self.kernel - 1) // 2
    x = nn.Conv(
      self.features,
      (self.kernel, self.kernel),
      kernel_dilation=self.dilation,
      padding=((pad, pad), (pad, pad)),
      use_bias=self.norm == "none",
      dtype=self.dtype,
      name="conv",
    )(x)
    return nn.relu(norm_layer(self.norm, train=train, dtype=self.dtype, name="norm")(x))


class ASPP(nn.Module):
  """A 1x1 branch, one 3x3 branch per atrous rate, and image pooling, fused by a 1x1 projection.

  `x: f[B,h,w,D]` -> f[B,h,w,features].
  """

  rates: tuple[int, ...] = (6, 12, 18)
  features: int = 256
  dropout: float = 0.1
  norm: str = "batch"
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    branch = functools.partial(ConvNormReLU, self.features, norm=self.norm, dtype=self.dtype)
    branches = [branch(name="conv1x1")(x, train=train)]
    for rate in self.rates:
      branches.append(branch(kernel=3, dilation=rate, name=f"atrous{rate}")(x, train=train))
    pooled = jnp.mean(x, axis=(1, 2), keepdims=True)
    pooled = branch(name="image_pool")(pooled, train=train)
    branches.append(jnp.broadcast_to(pooled, (*x.shape[:3], self.features)))
    x = branch(name="project")(jnp.concatenate(branches, axis=-1), train=train)
    return nn.Dropout(self.dropout, deterministic=not train)(x)


def _check_output_stride(output_stride: int) -> tuple[int, ...]:
  """ASPP rates for an output stride: (6, 12, 18) at 16, doubled at 8."""
  if output_stride not in (8, 16):
    raise ValueError(f"DeepLab output_stride={output_stride} is not 8 or 16.")
  return tuple(r * 16 // output_stride for r in (6, 12, 18))


class DeepLabV3(nn.Module):
  """ResNet -> ASPP (with image pooling) -> 3x3 conv -> 1x1 classifier -> bilinear up-sampling.

  Attributes:
    num_classes: output channels.
    backbone: "resnet18" ... "resnet152".
    output_stride: 16 (ASPP rates 6, 12, 18) or 8 (rates 12, 24, 36).
    deep_stem, avg_down, backbone_width: options of the ResNet
      (`segjax.models.backbones.ResNet`); the width is 64 but for tests.
    aspp_features: width of ASPP and of the head.
    dropout: rate after the ASPP projection.
    norm: "batch" (synchronised over devices), "frozen_batch", "group" or "none".
    dtype: compute dtype; parameters are float32.

  `images: f[B,H,W,3]` -> `{"logits": f32[B,H,W,num_classes]}`.
  """

  num_classes: int
  backbone: str = "resnet50"
  output_stride: int = 16
  deep_stem: bool = False
  avg_down: bool = False
  backbone_width: int = 64
  aspp_features: int = 256
  dropout: float = 0.1
  norm: str = "batch"
  dtype: jnp.dtype = jnp.float32

  def encode(self, images, train: bool):
    return backbones.backbone_of(self, output_stride=self.output_stride)(images, train=train)

  def aspp(self, x, train: bool):
    rates = _check_output_stride(self.output_stride)
    return ASPP(rates, self.aspp_features, self.dropout, self.norm, self.dtype, name="aspp")(
      x, train=train
    )

  def classify(self, x, size_hw):
    logits = nn.Conv(self.num_classes, (1, 1), dtype=self.dtype, name="classifier")(x)
    return {"logits": resize_bilinear(logits, size_hw).astype(jnp.float32)}

  @nn.compact
  def __call__(self, images, *, train: bool = False):
    features = self.encode(images, train)
    x = self.aspp(features["c5"], train)
    x = ConvNormReLU(self.aspp_features, 3, norm=self.norm, dtype=self.dtype, name="head")(
      x, train=train
    )
    return self.classify(x, images.shape[1:3])


class DeepLabV3Plus(DeepLabV3):
  """DeepLabv3 whose ASPP output is up-sampled to stride 4 and fused with the stride-4 features.

  Decoder: stride-4 features -> 1x1 conv to `low_level_features` (48); concatenated with the
  up-sampled ASPP output; two 3x3 convs of `decoder_features`; 1x1 classifier; 4x bilinear
  up-sampling to the input size.
  """

  low_level_features: int = 48
  decoder_features: int = 256

  @nn.compact
  def __call__(self, images, *, train: bool = False):
    features = self.encode(images, train)
    x = self.aspp(features["c5"], train)
    low = features["c2"]
    conv = functools.partial(ConvNormReLU, norm=self.norm, dtype=self.dtype)
    low = conv(self.low_level_features, name="low_level_project")(low, train=train)
    x = jnp.concatenate([resize_bilinear(x, low.shape[1:3]), low], axis=-1)
    x = conv(self.decoder_features, 3, name="decoder_conv1")(x, train=train)
    x = conv(self.decoder_features, 3, name="decoder_conv2")(x, train=train)
    return self.classify(x, images.shape[1:3])

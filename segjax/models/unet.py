"""U-Net (Ronneberger et al., 2015) with same-padding convolutions and learned 2x up-sampling."""

import functools

import flax.linen as nn
import jax.numpy as jnp

from segjax.models import backbones
from segjax.models.layers import ConvBlock, Upsample2x, max_pool


class UNet(nn.Module):
  """Encoder-decoder with skip concatenation.

  With the default widths (64, 128, 256) and a 512-wide bottleneck, a 256x256 input is encoded at
  256, 128 and 64 pixels and bottlenecked at 32 (7.70 M parameters for 7 classes).

  Attributes:
    num_classes: output channels.
    widths: encoder stage widths, one stage per entry; each stage but the bottleneck halves H, W.
    bottleneck: width at the lowest resolution; defaults to twice the last stage.
    norm: "batch", "frozen_batch", "group" or "none".
    backbone: "" for the convolutional encoder above, or "resnet18" ... "resnet152": a ResNet
      encoder (stride-4 to stride-32 features as skips; `widths` then name the five decoder stages,
      from stride 16 up to full resolution, and default to (256, 128, 64, 32, 16)).
    deep_stem, avg_down, backbone_width: options of the ResNet encoder.
    dtype: compute dtype; parameters are float32.

  Input `images: f[B,H,W,3]` with H, W divisible by 2**len(widths) (32 with a ResNet). Returns
  `{"logits": f32[B,H,W,num_classes]}`.
  """

  num_classes: int
  widths: tuple[int, ...] = (64, 128, 256)
  bottleneck: int | None = None
  norm: str = "batch"
  backbone: str = ""
  deep_stem: bool = False
  avg_down: bool = False
  backbone_width: int = 64
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, images, *, train: bool = False):
    if self.backbone:
      return self._resnet_unet(images, train)
    factor = 2 ** len(self.widths)
    if images.shape[1] % factor or images.shape[2] % factor:
      raise ValueError(
        f"UNet with {len(self.widths)} down-sampling stages needs H and W divisible by {factor}; "
        f"got images of shape {images.shape}."
      )
    block = functools.partial(ConvBlock, norm=self.norm, dtype=self.dtype)
    x = images.astype(self.dtype)
    skips = []
    for i, width in enumerate(self.widths):
      x = block(width, name=f"down_{i}")(x, train=train)
      skips.append(x)
      x = max_pool(x, 2, 2)
    x = block(self.bottleneck or 2 * self.widths[-1], name="bottleneck")(x, train=train)
    for i, (width, skip) in reversed(list(enumerate(zip(self.widths, skips, strict=True)))):
      x = Upsample2x(width, dtype=self.dtype, name=f"up_{i}")(x)
      x = jnp.concatenate([x, skip], axis=-1)
      x = block(width, name=f"decode_{i}")(x, train=train)
    logits = nn.Conv(self.num_classes, (1, 1), dtype=self.dtype, name="head")(x)
    return {"logits": logits.astype(jnp.float32)}

  def _resnet_unet(self, images, train: bool):
    """ResNet encoder; decoder up-samples 2x five times, concatenating c4, c3, c2 on the way."""
    if images.shape[1] % 32 or images.shape[2] % 32:
      raise ValueError(f"UNet on a ResNet needs H and W divisible by 32; got {images.shape}.")
    widths = self.widths if len(self.widths) == 5 else (256, 128, 64, 32, 16)
    features = backbones.backbone_of(self)(images, train=train)
    x = features["c5"]
    skips = (features["c4"], features["c3"], features["c2"], None, None)
    for i, (width, skip) in enumerate(zip(widths, skips, strict=True)):
      x = Upsample2x(width, dtype=self.dtype, name=f"up_{i}")(x)
      if skip is not None:
        x = jnp.concatenate([x, skip.astype(x.dtype)], axis=-1)
      x = ConvBlock(width, norm=self.norm, dtype=self.dtype, name=f"decode_{i}")(x, train=train)
    logits = nn.Conv(self.num_classes, (1, 1), dtype=self.dtype, name="head")(x)
    return {"logits": logits.astype(jnp.float32)}


unet_small = functools.partial(UNet, widths=(16, 32, 64))
unet_tiny = functools.partial(
  UNet, widths=(4, 8), bottleneck=8
)  # a few thousand parameters, for tests

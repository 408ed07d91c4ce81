"""ResNet v1.5 (the torchvision layout: stride on the 3x3 conv), with the ResNet-D stem and
shortcut options and dilation in place of stride for output strides 8 and 16.

Module names follow torchvision's state-dict keys (`conv1`, `bn1`, `layer3_5/conv2`, ...) so that
`segjax.convert.resnet` maps weights one to one.
"""

import functools

import flax.linen as nn
import jax.numpy as jnp

from segjax.models.layers import max_pool, norm_layer

# depth -> (block kind, blocks per stage)
DEPTHS = {
  18: ("basic", (2, 2, 2, 2)),
  34: ("basic", (3, 4, 6, 3)),
  50: ("bottleneck", (3, 4, 6, 3)),
  101: ("bottleneck", (3, 4, 23, 3)),
  152: ("bottleneck", (3, 8, 36, 3)),
}
BACKBONES = {f"resnet{depth}": depth for depth in DEPTHS}  # config names
OUTPUT_STRIDES = (None, 8, 16, 32)
_EXPANSION = {"basic": 1, "bottleneck": 4}


def _conv(features: int, kernel: int, *, stride: int = 1, dilation: int = 1, dtype, name):
  """A bias-free conv padded like PyTorch's (symmetric `dilation * (kernel - 1) / 2`).

  Flax's "SAME" pads a stride-2 conv of an even input on one side only, which shifts every
  feature by half a pixel against a torch-trained network.
  """
  pad = dilation * (kernel - 1) // 2
  return nn.Conv(
    features,
    (kernel, kernel),
    strides=stride,
    kernel_dilation=dilation,
    padding=((pad, pad), (pad, pad)),
    use_bias=False,
    dtype=dtype,
    name=name,
  )


class Block(nn.Module):
  """A basic (two 3x3) or bottleneck (1x1, 3x3, 1x1) residual block.

  `features` is the block's inner width; the output has `features * expansion` channels.
  """

  kind: str
  features: int
  stride: int = 1
  dilation: int = 1
  avg_down: bool = False  # ResNet-D: average-pool, then a stride-1 1x1 conv on the shortcut
  norm: str = "batch"
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool):
    conv = functools.partial(_conv, dtype=self.dtype)
    norm = functools.partial(norm_layer, self.norm, train=train, dtype=self.dtype)
    out_features = self.features * _EXPANSION[self.kind]
    if self.kind == "basic":
      y = conv(self.features, 3, stride=self.stride, dilation=self.dilation, name="conv1")(x)
      y = nn.relu(norm(name="bn1")(y))
      y = conv(self.features, 3, dilation=self.dilation, name="conv2")(y)
      y = norm(name="bn2")(y)
    else:
      y = nn.relu(norm(name="bn1")(conv(self.features, 1, name="conv1")(x)))
      y = conv(self.features, 3, stride=self.stride, dilation=self.dilation, name="conv2")(y)
      y = nn.relu(norm(name="bn2")(y))
      y = norm(name="bn3")(conv(out_features, 1, name="conv3")(y))

    shortcut = x
    if self.stride != 1 or x.shape[-1] != out_features:
      stride = self.stride
      if self.avg_down and stride != 1:
        # PyTorch's AvgPool2d(ceil_mode=True, count_include_pad=False): partial windows at the
        # bottom/right average only the pixels they cover.
        shortcut = _avg_pool_ceil(shortcut, stride)
        stride = 1
      shortcut = conv(out_features, 1, stride=stride, name="downsample_conv")(shortcut)
      shortcut = norm(name="downsample_bn")(shortcut)
    return nn.relu(y + shortcut)


def _avg_pool_ceil(x, window: int):
  h, w = x.shape[1:3]
  pad = ((0, 0), (0, -h % window), (0, -w % window), (0, 0))
  total = nn.pool(jnp.pad(x, pad), 0.0, jnp.add, (window, window), (window, window), "VALID")
  ones = jnp.pad(jnp.ones((1, h, w, 1), x.dtype), pad)
  count = nn.pool(ones, 0.0, jnp.add, (window, window), (window, window), "VALID")
  return total / count


class ResNet(nn.Module):
  """ResNet-18/34/50/101/152 returning the feature pyramid of its four stages.

  Attributes:
    depth: 18, 34, 50, 101 or 152.
    output_stride: None or 32 (plain), 16 (stage 4 dilated 2) or 8 (stages 3 and 4 dilated 2
      and 4). As in torchvision, a dilated stage's first block keeps the previous dilation.
    deep_stem: three 3x3 convs (32, 32, 64 wide) instead of the 7x7 conv (ResNet-C; mmseg "V1c").
    avg_down: average-pool before the strided shortcut conv (ResNet-D; timm's "resnet50d" has
      both this and the deep stem).
    width: channels of the stem and the first stage (64); the stages double it. Narrower
      ResNets are for tests; pretrained weights need 64.
    norm: see `segjax.models.layers.norm_layer`.
    dtype: compute dtype; parameters stay float32.

  `images: f[B,H,W,3]` -> `{"c2", "c3", "c4", "c5"}`: f[B, H/s, W/s, D] at strides s = 4, 8, 16,
  32 before dilation (those of the dilated stages stay at `output_stride`), D = 1, 2, 4, 8 times
  `width` times the block expansion (1 basic, 4 bottleneck).
  """

  depth: int = 50
  output_stride: int | None = None
  deep_stem: bool = False
  avg_down: bool = False
  width: int = 64
  norm: str = "batch"
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, images, *, train: bool = False):
    if self.depth not in DEPTHS:
      raise ValueError(f"ResNet depth={self.depth} is not one of {sorted(DEPTHS)}.")
    if self.output_stride not in OUTPUT_STRIDES:
      raise ValueError(f"output_stride={self.output_stride} is not one of {OUTPUT_STRIDES}.")
    kind, blocks = DEPTHS[self.depth]
    norm = functools.partial(norm_layer, self.norm, train=train, dtype=self.dtype)
    x = images.astype(self.dtype)
    if self.deep_stem:
      for i, width in enumerate((self.width // 2, self.width // 2, self.width)):
        x = _conv(width, 3, stride=2 if i == 0 else 1, dtype=self.dtype, name=f"stem_conv{i}")(x)
        x = nn.relu(norm(name=f"stem_bn{i}")(x))
    else:
      x = _conv(self.width, 7, stride=2, dtype=self.dtype, name="conv1")(x)
      x = nn.relu(norm(name="bn1")(x))
    x = max_pool(x, 3, 2, padding=1)

    features, stride, dilation = {}, 4, 1
    for stage, num_blocks in enumerate(blocks):
      block_stride = 1 if stage == 0 else 2
      previous_dilation = dilation
      if block_stride == 2 and self.output_stride is not None and stride >= self.output_stride:
        dilation, block_stride = dilation * 2, 1
      stride *= block_stride
      for b in range(num_blocks):
        x = Block(
          kind,
          self.width * 2**stage,
          stride=block_stride if b == 0 else 1,
          dilation=previous_dilation if b == 0 else dilation,
          avg_down=self.avg_down,
          norm=self.norm,
          dtype=self.dtype,
          name=f"layer{stage + 1}_{b}",
        )(x, train=train)
      features[f"c{stage + 2}"] = x
    return features


def backbone_of(model, *, output_stride: int | None = None) -> ResNet:
  """The `backbone` submodule of a segmentation model, from the model's own fields: `backbone`
  ("resnet50", ...), `deep_stem`, `avg_down`, `backbone_width`, `norm` and `dtype`. The name is the
  one that `segjax.convert.resnet.load_pretrained_backbone` fills."""
  if model.backbone not in BACKBONES:
    raise ValueError(f"backbone={model.backbone!r} is not one of {sorted(BACKBONES)}.")
  return ResNet(
    depth=BACKBONES[model.backbone],
    output_stride=output_stride,
    deep_stem=model.deep_stem,
    avg_down=model.avg_down,
    width=model.backbone_width,
    norm=model.norm,
    dtype=model.dtype,
    name="backbone",
  )


def resnet(depth: int, *, output_stride: int | None = None, **kwargs) -> ResNet:
  """A ResNet by depth, e.g. `resnet(50, output_stride=16)`; see `ResNet` for the options."""
  return ResNet(depth=depth, output_stride=output_stride, **kwargs)

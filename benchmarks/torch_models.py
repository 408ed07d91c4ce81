"""The benchmarked segjax architectures written in PyTorch, layer for layer, for speed comparisons.

Same layers, widths and parameter counts as `segjax.models.UNet` and `segjax.models.DeepLabV3Plus`
(checked by tests/benchmarks/test_torch_models.py); NCHW, as a PyTorch user writes them. The U-Net's
learned 2x up-sampling is the same function in both: a 1x1 projection to 4·D channels, then
depth-to-space (`PixelShuffle`).
"""

import torch
import torch.nn.functional as F
import torch_resnet
from torch import nn


def conv_bn_relu(cin: int, cout: int, kernel: int = 3, dilation: int = 1) -> nn.Sequential:
  pad = dilation * (kernel - 1) // 2
  return nn.Sequential(
    nn.Conv2d(cin, cout, kernel, padding=pad, dilation=dilation, bias=False),
    nn.BatchNorm2d(cout),
    nn.ReLU(inplace=True),
  )


class UNet(nn.Module):
  """segjax's `UNet(num_classes, widths, bottleneck)` with batch norm."""

  def __init__(self, num_classes: int, widths=(64, 128, 256), bottleneck: int | None = None):
    super().__init__()
    bottleneck = bottleneck or 2 * widths[-1]
    block = lambda cin, cout: nn.Sequential(conv_bn_relu(cin, cout), conv_bn_relu(cout, cout))
    self.down = nn.ModuleList()
    cin = 3
    for width in widths:
      self.down.append(block(cin, width))
      cin = width
    self.bottleneck = block(cin, bottleneck)
    self.up, self.decode = nn.ModuleList(), nn.ModuleList()
    cin = bottleneck
    for width in reversed(widths):
      self.up.append(nn.Sequential(nn.Conv2d(cin, 4 * width, 1), nn.PixelShuffle(2)))
      self.decode.append(block(2 * width, width))
      cin = width
    self.head = nn.Conv2d(cin, num_classes, 1)

  def forward(self, x):
    skips = []
    for block in self.down:
      x = block(x)
      skips.append(x)
      x = F.max_pool2d(x, 2)
    x = self.bottleneck(x)
    for up, decode, skip in zip(self.up, self.decode, reversed(skips), strict=True):
      x = decode(torch.cat([up(x), skip], dim=1))
    return self.head(x)


class ASPP(nn.Module):
  def __init__(self, cin: int, rates=(6, 12, 18), features: int = 256, dropout: float = 0.1):
    super().__init__()
    self.branches = nn.ModuleList([conv_bn_relu(cin, features, 1)])
    self.branches.extend(conv_bn_relu(cin, features, 3, rate) for rate in rates)
    self.image_pool = conv_bn_relu(cin, features, 1)
    self.project = conv_bn_relu(features * (len(rates) + 2), features, 1)
    self.dropout = nn.Dropout(dropout)

  def forward(self, x):
    pooled = self.image_pool(x.mean(dim=(2, 3), keepdim=True)).expand(-1, -1, *x.shape[2:])
    x = torch.cat([branch(x) for branch in self.branches] + [pooled], dim=1)
    return self.dropout(self.project(x))


class DeepLabV3Plus(nn.Module):
  """segjax's `DeepLabV3Plus(num_classes, backbone="resnet50", output_stride)` with its defaults:
  ASPP 256, low-level projection 48, decoder 256."""

  def __init__(self, num_classes: int, depth: int = 50, output_stride: int = 16):
    super().__init__()
    dilate = (False, output_stride == 8, True)
    self.backbone = torch_resnet.ResNet(depth, dilate, num_classes=0)
    expansion = torch_resnet.LAYERS[depth][0].expansion
    rates = tuple(r * 16 // output_stride for r in (6, 12, 18))
    self.aspp = ASPP(512 * expansion, rates)
    self.low_level_project = conv_bn_relu(64 * expansion, 48, 1)
    self.decoder = nn.Sequential(conv_bn_relu(256 + 48, 256), conv_bn_relu(256, 256))
    self.classifier = nn.Conv2d(256, num_classes, 1)

  def forward(self, images):
    features = self.backbone.features(images)
    x = self.aspp(features["c5"])
    low = self.low_level_project(features["c2"])
    x = F.interpolate(x, size=low.shape[2:], mode="bilinear", align_corners=False)
    x = self.classifier(self.decoder(torch.cat([x, low], dim=1)))
    return F.interpolate(x, size=images.shape[2:], mode="bilinear", align_corners=False)


def dice_loss(logits, labels, ignore_index: int = 255, smooth: float = 1.0):
  """segjax's `dice_loss` (soft Dice over all classes, batch-pooled, void pixels left out)."""
  valid = (labels != ignore_index).unsqueeze(1)
  probs = logits.softmax(dim=1) * valid
  onehot = F.one_hot(labels.clamp(max=logits.shape[1] - 1), logits.shape[1]).permute(0, 3, 1, 2)
  onehot = onehot * valid
  tp = (probs * onehot).sum(dim=(0, 2, 3))
  dice = (2 * tp + smooth) / (probs.sum(dim=(0, 2, 3)) + onehot.sum(dim=(0, 2, 3)) + smooth)
  return (1 - dice).mean()


def count_parameters(model: nn.Module) -> int:
  """Trainable parameters (batch-norm statistics are buffers, not parameters, as in segjax)."""
  return sum(p.numel() for p in model.parameters())

"""A PyTorch ResNet for reference, written to torchvision's definition (v1.5, `resnet.py`):
the same module names and state-dict keys, `replace_stride_with_dilation`, and timm's ResNet-D
options (`stem_type="deep"`: `conv1` = conv-bn-relu-conv-bn-relu-conv; `avg_down`: the shortcut
is AvgPool2d(ceil_mode, count_include_pad=False) then a 1x1 conv).

torchvision itself is not importable next to a CPU-only torch build, so the reference is spelt
out here; it is torch code checked against the published layout (parameter count of ResNet-50:
25,557,032 with its 1000-class head).
"""

import torch
from torch import nn


class BasicBlock(nn.Module):
  expansion = 1

  def __init__(self, inplanes, planes, stride=1, downsample=None, dilation=1):
    super().__init__()
    self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, dilation, dilation=dilation, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.relu = nn.ReLU(inplace=True)
    self.conv2 = nn.Conv2d(planes, planes, 3, 1, dilation, dilation=dilation, bias=False)
    self.bn2 = nn.BatchNorm2d(planes)
    self.downsample = downsample

  def forward(self, x):
    identity = x if self.downsample is None else self.downsample(x)
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.bn2(self.conv2(out))
    return self.relu(out + identity)


class Bottleneck(nn.Module):
  expansion = 4

  def __init__(self, inplanes, planes, stride=1, downsample=None, dilation=1):
    super().__init__()
    self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.conv2 = nn.Conv2d(planes, planes, 3, stride, dilation, dilation=dilation, bias=False)
    self.bn2 = nn.BatchNorm2d(planes)
    self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
    self.bn3 = nn.BatchNorm2d(planes * 4)
    self.relu = nn.ReLU(inplace=True)
    self.downsample = downsample

  def forward(self, x):
    identity = x if self.downsample is None else self.downsample(x)
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.relu(self.bn2(self.conv2(out)))
    out = self.bn3(self.conv3(out))
    return self.relu(out + identity)


LAYERS = {18: (BasicBlock, [2, 2, 2, 2]), 34: (BasicBlock, [3, 4, 6, 3]),
          50: (Bottleneck, [3, 4, 6, 3]), 101: (Bottleneck, [3, 4, 23, 3])}  # fmt: skip


class ResNet(nn.Module):
  """torchvision's ResNet; `num_classes=0` leaves out the pooled classifier (a backbone)."""

  def __init__(self, depth, replace_stride_with_dilation=(False, False, False), deep_stem=False,
               avg_down=False, num_classes=1000):  # fmt: skip
    super().__init__()
    block, layers = LAYERS[depth]
    self.inplanes, self.dilation, self.avg_down = 64, 1, avg_down
    if deep_stem:
      self.conv1 = nn.Sequential(
        nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
        nn.Conv2d(32, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
        nn.Conv2d(32, 64, 3, 1, 1, bias=False),
      )  # fmt: skip
    else:
      self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
    self.bn1 = nn.BatchNorm2d(64)
    self.relu = nn.ReLU(inplace=True)
    self.maxpool = nn.MaxPool2d(3, 2, 1)
    self.layer1 = self._make_layer(block, 64, layers[0])
    self.layer2 = self._make_layer(block, 128, layers[1], 2, replace_stride_with_dilation[0])
    self.layer3 = self._make_layer(block, 256, layers[2], 2, replace_stride_with_dilation[1])
    self.layer4 = self._make_layer(block, 512, layers[3], 2, replace_stride_with_dilation[2])
    if num_classes:
      self.avgpool = nn.AdaptiveAvgPool2d(1)
      self.fc = nn.Linear(512 * block.expansion, num_classes)

  def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
    downsample, previous_dilation = None, self.dilation
    if dilate:
      self.dilation *= stride
      stride = 1
    if stride != 1 or self.inplanes != planes * block.expansion:
      out = planes * block.expansion
      if self.avg_down and stride != 1:
        downsample = nn.Sequential(
          nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False),
          nn.Conv2d(self.inplanes, out, 1, bias=False), nn.BatchNorm2d(out),
        )  # fmt: skip
      else:
        downsample = nn.Sequential(
          nn.Conv2d(self.inplanes, out, 1, stride, bias=False), nn.BatchNorm2d(out)
        )
    layers = [block(self.inplanes, planes, stride, downsample, previous_dilation)]
    self.inplanes = planes * block.expansion
    layers += [block(self.inplanes, planes, dilation=self.dilation) for _ in range(1, blocks)]
    return nn.Sequential(*layers)

  def features(self, x):
    """`x: [B,3,H,W]` -> {"c2", ..., "c5"} in NCHW."""
    x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
    out = {}
    for i, layer in enumerate((self.layer1, self.layer2, self.layer3, self.layer4)):
      x = layer(x)
      out[f"c{i + 2}"] = x
    return out


def randomize(model: nn.Module, seed: int) -> nn.Module:
  """Random weights everywhere, batch-norm statistics included, so that no layer is an identity."""
  generator = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for name, tensor in model.state_dict().items():
      if name.endswith("num_batches_tracked"):
        continue
      if name.endswith("running_var"):
        tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
      elif name.endswith(("bn1.weight", "bn2.weight", "bn3.weight")) or ".1.weight" in name:
        tensor.copy_(torch.rand(tensor.shape, generator=generator) * 0.5 + 0.5)
      else:
        fan_in = tensor[0].numel() if tensor.ndim > 1 else 1
        tensor.copy_(torch.randn(tensor.shape, generator=generator) / fan_in**0.5)
  return model.eval()

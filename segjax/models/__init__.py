"""Models, looked up by `config.model.name`: `MODELS[name](num_classes=C, **kwargs)`."""

import dataclasses

from segjax.models.deeplab import DeepLabV3, DeepLabV3Plus
from segjax.models.unet import UNet, unet_small, unet_tiny

MODELS = {
  "unet": UNet,
  "unet_small": unet_small,
  "unet_tiny": unet_tiny,
  "deeplabv3": DeepLabV3,
  "deeplabv3plus": DeepLabV3Plus,
}


def accepts_backbone(constructor) -> bool:
  """Whether a model (a class or a partial of one) has a ResNet set by `config.model.backbone`."""
  cls = getattr(constructor, "func", constructor)
  return any(f.name == "backbone" for f in dataclasses.fields(cls))


__all__ = ["MODELS", "DeepLabV3", "DeepLabV3Plus", "UNet", "accepts_backbone"]

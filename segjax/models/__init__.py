"""Models, looked up by `config.model.name`: `MODELS[name](num_classes=C, **kwargs)`."""

from segjax.models.unet import UNet, unet_small, unet_tiny

MODELS = {
  "unet": UNet,
  "unet_small": unet_small,
  "unet_tiny": unet_tiny,
}

__all__ = ["MODELS", "UNet"]

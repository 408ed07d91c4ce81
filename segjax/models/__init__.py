"""Models, looked up by `config.model.name`: `MODELS[name](num_classes=C, **kwargs)`."""

import dataclasses

from segjax.models.deeplab import DeepLabV3, DeepLabV3Plus
from segjax.models.mask_rcnn import MaskRCNN
from segjax.models.panoptic import PanopticDeepLab, PanopticFPN
from segjax.models.sam.interactive import InteractiveSam
from segjax.models.unet import UNet, unet_small, unet_tiny

MODELS = {
  "unet": UNet,
  "unet_small": unet_small,
  "unet_tiny": unet_tiny,
  "deeplabv3": DeepLabV3,
  "deeplabv3plus": DeepLabV3Plus,
  "mask_rcnn": MaskRCNN,
  "panoptic_deeplab": PanopticDeepLab,
  "panoptic_fpn": PanopticFPN,
  "sam_interactive": InteractiveSam,
}
# The task whose outputs each model produces: per-pixel logits, detections, panoptic heads, or
# masks from prompts.
MODEL_TASKS = {
  **{name: "semantic" for name in MODELS},
  "mask_rcnn": "instance",
  "panoptic_deeplab": "panoptic",
  "panoptic_fpn": "panoptic",
  "sam_interactive": "promptable",
}


def model_fields(constructor) -> dict[str, dataclasses.Field]:
  """The constructor arguments of a model (a class or a partial of one), by name."""
  return {f.name: f for f in dataclasses.fields(getattr(constructor, "func", constructor))}


def default_backbone(constructor) -> str:
  """The ResNet a model uses when `config.model.backbone.name` is "" ("" for none)."""
  field = model_fields(constructor).get("backbone")
  return field.default if field is not None else ""


__all__ = [
  "MODELS",
  "MODEL_TASKS",
  "DeepLabV3",
  "DeepLabV3Plus",
  "InteractiveSam",
  "MaskRCNN",
  "PanopticDeepLab",
  "PanopticFPN",
  "UNet",
  "default_backbone",
  "model_fields",
]

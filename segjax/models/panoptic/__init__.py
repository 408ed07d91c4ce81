"""Panoptic models: Panoptic-DeepLab (bottom-up) and Panoptic FPN (Mask R-CNN + semantic head)."""

from segjax.models.panoptic.deeplab import PanopticDeepLab
from segjax.models.panoptic.fpn import PanopticFPN

__all__ = ["PanopticDeepLab", "PanopticFPN"]

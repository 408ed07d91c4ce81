"""Mask R-CNN: FPN, RPN, RoI box and mask heads, and the targets they train on."""

from segjax.models.mask_rcnn.model import MaskRCNN

__all__ = ["MaskRCNN"]

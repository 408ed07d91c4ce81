"""Feature extractors for encoder-decoder models: ResNets that return a pyramid of feature maps."""

from segjax.models.backbones.resnet import BACKBONES, DEPTHS, ResNet, backbone_of, resnet

__all__ = ["BACKBONES", "DEPTHS", "ResNet", "backbone_of", "resnet"]

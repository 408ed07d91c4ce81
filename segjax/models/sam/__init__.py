"""Segment Anything (SAM): a ViT image encoder, a prompt encoder and a two-way mask decoder,
equal to the official PyTorch model (`segment_anything`) with its weights converted by
`segjax.convert.sam`."""

from segjax.models.sam.config import PIXEL_MEAN, PIXEL_STD, SamConfig
from segjax.models.sam.model import Sam, preprocess

__all__ = ["PIXEL_MEAN", "PIXEL_STD", "Sam", "SamConfig", "preprocess"]

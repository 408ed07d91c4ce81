"""Promptable segmentation with Segment Anything: `SamPredictor` (points, boxes and mask prompts
on one image) and `SamAutomaticMaskGenerator` (masks of everything, from a grid of points), as the
official `segment_anything` predictor and generator."""

from segjax.promptable.automatic import SamAutomaticMaskGenerator
from segjax.promptable.predictor import SamPredictor

__all__ = ["SamAutomaticMaskGenerator", "SamPredictor"]

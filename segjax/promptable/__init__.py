"""Promptable segmentation with Segment Anything: `SamPredictor` (points, boxes and mask prompts
on one image) and `SamAutomaticMaskGenerator` (masks of everything, from a grid of points), as the
official `segment_anything` predictor and generator; `simulate_clicks`, the click protocol of
interactive segmentation run with a predictor."""

from segjax.promptable.automatic import SamAutomaticMaskGenerator
from segjax.promptable.clicks import ClickTrace, simulate_clicks
from segjax.promptable.predictor import SamPredictor

__all__ = ["ClickTrace", "SamAutomaticMaskGenerator", "SamPredictor", "simulate_clicks"]

"""The click protocol of interactive segmentation, run with a `SamPredictor` on its set image.

SAM's interactive evaluation (Kirillov et al., 2023, appendix D.4) on RITM's simulated user
(`segjax.metrics.interactive`): the first click asks for three masks and keeps the one of highest
predicted IoU; every later click passes all clicks so far and the previous low-resolution logits as
the mask prompt, and asks for a single mask.
"""

import dataclasses
from typing import Any

import numpy as np

from segjax.metrics.interactive import Click, click_ious


@dataclasses.dataclass(frozen=True)
class ClickTrace:
  """What a simulated user did on one object.

  Attributes:
    ious: f64[max_clicks], the IoU after each click (repeated once clicking stopped).
    clicks: the clicks made, `(y, x, is_positive)` in pixels of the image.
    masks: bool[H,W] masks after each of `clicks`.
  """

  ious: np.ndarray
  clicks: list[Click]
  masks: list[np.ndarray]


def simulate_clicks(
  predictor,
  gt: Any,
  *,
  max_clicks: int = 20,
  ignore: Any = None,
  stop_at: float | None = None,
) -> ClickTrace:
  """Clicks on the object `gt: bool[H,W]` of the predictor's image until `max_clicks` (or until
  the IoU reaches `stop_at`, or nothing is left to click); `ignore: bool[H,W]` pixels are never
  clicked nor counted. `predictor` is a `SamPredictor` whose image is set."""
  clicks: list[Click] = []
  masks: list[np.ndarray] = []
  previous_logits = None

  def predict(so_far: list[Click]) -> np.ndarray:
    nonlocal previous_logits
    coords = np.array([[x, y] for y, x, _ in so_far], np.float32)
    labels = np.array([int(positive) for *_, positive in so_far], np.int32)
    candidates, scores, logits = predictor.predict(
      coords, labels, mask_input=previous_logits, multimask_output=previous_logits is None
    )
    best = int(np.argmax(scores))
    previous_logits = logits[best][None]
    clicks.append(so_far[-1])
    masks.append(candidates[best])
    return candidates[best]

  ious = click_ious(predict, gt, max_clicks=max_clicks, ignore=ignore, stop_at=stop_at)
  return ClickTrace(ious=ious, clicks=clicks, masks=masks)

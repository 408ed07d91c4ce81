"""`simulate_clicks`: SAM's interactive protocol on a predictor, against a hand-worked case."""

import numpy as np

from segjax.promptable import simulate_clicks


def square(rows, cols, shape=(20, 20)):
  mask = np.zeros(shape, bool)
  mask[rows[0] : rows[1], cols[0] : cols[1]] = True
  return mask


GT = square((4, 12), (6, 14))  # 8x8


class ScriptedPredictor:
  """Answers each `predict` call with the next scripted `(masks, scores, logits)`; records calls."""

  def __init__(self, answers):
    self.answers, self.calls = list(answers), []

  def predict(self, point_coords, point_labels, mask_input=None, multimask_output=True):
    self.calls.append((point_coords, point_labels, mask_input, multimask_output))
    return self.answers.pop(0)


def test_first_click_keeps_the_best_candidate_then_feeds_its_logits_back():
  shifted = square((4, 12), (8, 16))  # IoU with GT: 48 / 80
  candidates = np.stack([np.zeros_like(GT), shifted, np.ones_like(GT)])
  logits = np.arange(3, dtype=np.float32)[:, None, None] * np.ones((3, 8, 8), np.float32)
  predictor = ScriptedPredictor(
    [
      (candidates, np.array([0.1, 0.9, 0.5]), logits),
      (GT[None], np.array([0.99]), np.zeros((1, 8, 8), np.float32)),
    ]
  )
  trace = simulate_clicks(predictor, GT, max_clicks=5)
  # Click 1: the square's interior point, row-major first of the four at distance 4 (row 7,
  # column 9), as (x, y). The shifted mask leaves 2-wide FN and FP strips (distance 1 both): a
  # tie is a negative click, on the first FP pixel, (4, 14).
  assert trace.clicks == [(7, 9, True), (4, 14, False)]
  (coords1, labels1, mask1, multi1), (coords2, labels2, mask2, multi2) = predictor.calls
  np.testing.assert_array_equal(coords1, [[9, 7]])
  np.testing.assert_array_equal(labels1, [1])
  assert mask1 is None and multi1
  np.testing.assert_array_equal(coords2, [[9, 7], [14, 4]])
  np.testing.assert_array_equal(labels2, [1, 0])
  np.testing.assert_array_equal(mask2, logits[1:2])  # the kept candidate's logits
  assert not multi2
  # After the second click the mask is right: nothing is left to click and the IoU stays 1.
  np.testing.assert_allclose(trace.ious, [48 / 80, 1, 1, 1, 1])
  np.testing.assert_array_equal(trace.masks[0], shifted)
  np.testing.assert_array_equal(trace.masks[1], GT)


def test_stops_at_the_requested_iou():
  predictor = ScriptedPredictor(
    [(GT[None].repeat(3, 0), np.array([0.2, 0.3, 0.1]), np.zeros((3, 4, 4)))]
  )
  trace = simulate_clicks(predictor, GT, max_clicks=3, stop_at=0.9)
  assert len(predictor.calls) == 1 and len(trace.clicks) == 1
  np.testing.assert_allclose(trace.ious, [1, 1, 1])

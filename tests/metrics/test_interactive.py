"""Tests for segjax.metrics.interactive: hand-worked clicks and IoU curves, the JAX EDT and click
simulator against scipy and numpy, and the numpy simulator against RITM's cv2 rule."""

import cv2
import numpy as np
import pytest
from scipy import ndimage

from segjax.metrics.interactive import (
  NO_CLICK,
  click_ious,
  distance_transform_edt,
  interactive_scores,
  mask_iou,
  next_click,
  next_clicks,
  noc,
)


def box(shape, rows, cols):
  """bool[H,W], True on the half-open `rows` x `cols` block."""
  m = np.zeros(shape, bool)
  m[rows[0] : rows[1], cols[0] : cols[1]] = True
  return m


def random_blobs(rng, shape, n_max=3):
  """Union of 0..n_max random rectangles, often touching the border, with ties in distance."""
  m = np.zeros(shape, bool)
  for _ in range(rng.integers(0, n_max + 1)):
    y0, y1 = np.sort(rng.integers(0, shape[0] + 1, 2))
    x0, x1 = np.sort(rng.integers(0, shape[1] + 1, 2))
    m[y0:y1, x0:x1] = True
  return m


def random_case(rng, shape):
  """(pred, gt, valid, clicked); pred == gt in about one case of six."""
  gt = random_blobs(rng, shape)
  pred = gt.copy() if rng.random() < 0.15 else gt ^ random_blobs(rng, shape)
  valid = ~random_blobs(rng, shape, 1) if rng.random() < 0.5 else np.ones(shape, bool)
  clicked = rng.random(shape) < 0.05
  return pred, gt, valid, clicked


# --- EDT ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 9), (7, 1), (6, 6), (13, 21), (32, 17)])
def test_edt_matches_scipy(shape):
  rng = np.random.default_rng(shape[0] * 100 + shape[1])
  masks = np.stack([rng.random(shape) < p for p in (0.3, 0.7, 0.95)] + [random_blobs(rng, shape)])
  masks[:, 0, 0] = False  # scipy's EDT is undefined without a False pixel
  want = np.stack([ndimage.distance_transform_edt(m) for m in masks])
  np.testing.assert_allclose(distance_transform_edt(masks), want, atol=1e-5)

  masks[:, 0, 0] = True  # touching the border; padding makes it background
  masks[-1] = True
  want = np.stack([ndimage.distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1] for m in masks])
  np.testing.assert_allclose(distance_transform_edt(masks, padding=True), want, atol=1e-5)


def test_edt_without_background():
  masks = np.ones((2, 3, 4), bool)
  masks[1, 2, 3] = False
  d = np.asarray(distance_transform_edt(masks))
  assert np.isinf(d[0]).all()
  np.testing.assert_allclose(d[1], ndimage.distance_transform_edt(masks[1]), atol=1e-6)
  # Padded, the middle row of the all-True 3x4 image is 2 from the top and bottom borders.
  np.testing.assert_allclose(distance_transform_edt(masks[0], padding=True)[1], [1, 2, 2, 1])


# --- next_click by hand ------------------------------------------------------------------------

S = (12, 12)


def test_empty_prediction_clicks_the_centre():
  # A 5x5 square: its centre is 3 from the nearest pixel outside it, every other pixel less.
  gt = box(S, (3, 8), (4, 9))
  assert next_click(np.zeros(S, bool), gt) == (5, 6, True)


def test_false_positive_blob_gets_a_negative_click():
  gt = box(S, (2, 7), (1, 6))
  pred = gt | box(S, (8, 11), (8, 11))  # extra 3x3 blob, centre 2 from its outside
  assert next_click(pred, gt) == (9, 9, False)


def test_equal_distances_give_a_negative_click():
  gt = box(S, (1, 4), (1, 4))  # FN 3x3, centre (2, 2) at distance 2
  pred = box(S, (7, 10), (6, 9))  # FP 3x3, centre (8, 7) at distance 2
  assert next_click(pred, gt) == (8, 7, False)
  gt = box(S, (1, 6), (1, 6))  # FN 5x5: distance 3 now wins
  assert next_click(pred, gt) == (3, 3, True)


def test_ties_go_to_the_row_major_first_pixel():
  empty = np.zeros(S, bool)
  # 3 x 4 rectangle: (3, 3) and (3, 4) are both 2 from its outside.
  assert next_click(empty, box(S, (2, 5), (2, 6))) == (3, 3, True)
  # Two 3x3 squares: top-right centre (2, 9) before bottom-left (9, 2), unlike column-major order.
  two = box(S, (1, 4), (8, 11)) | box(S, (8, 11), (1, 4))
  assert next_click(empty, two) == (2, 9, True)


def test_ignore_region_is_not_an_error():
  empty = np.zeros(S, bool)
  gt = box(S, (3, 8), (2, 7))  # 5x5, centre (5, 4)
  # Ignoring its left two columns leaves a 5 x 3 block whose middle column is 2 from the outside
  # in rows 4..6: the first is (4, 5).
  ignore = box(S, (0, 12), (0, 4))
  assert next_click(empty, gt, ignore=ignore) == (4, 5, True)
  # A large FP inside the ignore region does not count; a 1-pixel FN does.
  gt = box(S, (10, 11), (10, 11))
  pred = box(S, (0, 7), (0, 7))
  assert next_click(pred, gt) == (3, 3, False)
  assert next_click(pred, gt, ignore=box(S, (0, 8), (0, 8))) == (10, 10, True)


def test_clicked_pixels_are_not_clicked_again():
  empty = np.zeros(S, bool)
  gt = box(S, (3, 8), (4, 9))
  clicked = box(S, (5, 6), (6, 7))  # the centre; (4, 5), (4, 6), ... are 2 from the outside
  assert next_click(empty, gt, clicked=clicked) == (4, 5, True)


def test_border_counts_as_outside_only_with_padding():
  empty = np.zeros((5, 8), bool)
  gt = box((5, 8), (0, 5), (0, 3))  # full-height block on the left edge
  # Padded: column 1 is 2 from either side, rows 1..3 also 2 from the top/bottom border.
  assert next_click(empty, gt) == (1, 1, True)
  # Unpadded: the only non-error pixels are in columns 3.., so column 0 is farthest (3).
  assert next_click(empty, gt, padding=False) == (0, 0, True)
  # Unpadded with nothing outside the error: +inf everywhere, so the first pixel.
  full = np.ones((5, 8), bool)
  assert next_click(empty, full, padding=False) == (0, 0, True)


def test_nothing_to_click_gives_the_sentinel():
  gt = box(S, (3, 8), (4, 9))
  assert NO_CLICK == (-1, -1, False)
  assert next_click(gt, gt) == NO_CLICK
  empty = np.zeros(S, bool)
  assert next_click(empty, empty) == NO_CLICK
  assert next_click(empty, gt, ignore=gt) == NO_CLICK
  one = box(S, (5, 6), (5, 6))
  assert next_click(empty, one, clicked=one) == NO_CLICK


def ritm_next_click(pred, gt, not_ignore, not_clicked):
  """RITM's `Clicker._get_next_click` with cv2's exact L2 distance transform."""
  dts = []
  for error in (gt & ~pred & not_ignore, ~gt & pred & not_ignore):
    dt = cv2.distanceTransform(np.pad(error, 1).astype(np.uint8), cv2.DIST_L2, 0)[1:-1, 1:-1]
    dts.append(dt * not_clicked)
  positive = dts[0].max() > dts[1].max()
  dt = dts[0] if positive else dts[1]
  ys, xs = np.where(dt == dt.max())
  return int(ys[0]), int(xs[0]), bool(positive)


def test_next_click_matches_ritm_cv2():
  rng = np.random.default_rng(0)
  checked = 0
  for _ in range(100):
    shape = tuple(int(n) for n in rng.integers(1, 20, 2))
    pred, gt, valid, clicked = random_case(rng, shape)
    click = next_click(pred, gt, ignore=~valid, clicked=clicked)
    if click != NO_CLICK:
      assert click == ritm_next_click(pred, gt, valid, ~clicked)
      checked += 1
  assert checked > 50


# --- next_clicks (JAX) against next_click ------------------------------------------------------


@pytest.mark.parametrize(
  ("shape", "padding", "masks"),
  [((9, 13), True, True), ((16, 16), True, False), ((6, 11), False, True)],
)
def test_next_clicks_match_numpy(shape, padding, masks):
  rng = np.random.default_rng(shape[0] * shape[1])
  cases = [random_case(rng, shape) for _ in range(10)]
  gt = cases[0][1]
  cases[0] = (gt, gt, *cases[0][2:])  # nothing to click
  if not padding:  # nothing but errors: distance +inf everywhere
    cases[1] = (np.zeros(shape, bool), np.ones(shape, bool), np.ones(shape, bool), cases[1][3])
  pred, gt, valid, clicked = (np.stack(x) for x in zip(*cases, strict=True))
  if not masks:
    valid = clicked = None
  yx, positive = next_clicks(pred, gt, valid, clicked, padding=padding)
  want = [
    next_click(
      pred[i],
      gt[i],
      ignore=None if valid is None else ~valid[i],
      clicked=None if clicked is None else clicked[i],
      padding=padding,
    )
    for i in range(len(cases))
  ]
  assert [(int(y), int(x), bool(p)) for (y, x), p in zip(yx, positive, strict=True)] == want
  assert want[0] == NO_CLICK


# --- IoU and the click loop --------------------------------------------------------------------


def test_mask_iou():
  gt = box((4, 4), (0, 2), (0, 2))  # 4 pixels
  pred = box((4, 4), (0, 2), (1, 3))  # 4 pixels, 2 shared
  assert mask_iou(pred, gt) == 2 / 6
  assert mask_iou(pred, gt, ignore=box((4, 4), (0, 4), (2, 4))) == 2 / 4
  assert mask_iou(pred, gt, ignore=box((4, 4), (0, 1), (0, 4))) == 1 / 3  # row 0 ignored
  empty = np.zeros((4, 4), bool)
  assert mask_iou(empty, empty) == 1.0
  assert mask_iou(pred, empty, ignore=pred) == 1.0


H, W = 5, 9


def square(y, x):
  """3x3 square centred on (y, x), clipped to the image."""
  return box((H, W), (max(y - 1, 0), y + 2), (max(x - 1, 0), x + 2))


def oracle(calls):
  """A predictor that paints 3x3 squares at positive clicks and erases them at negative ones."""

  def predict(clicks):
    calls.append(clicks)
    pred = np.zeros((H, W), bool)
    for y, x, positive in clicks:
      if positive:
        pred |= square(y, x)
    for y, x, positive in clicks:
      if not positive:
        pred &= ~square(y, x)
    return pred

  return predict


def test_click_ious_by_hand():
  # GT: a 3x3 square centred on (2, 2) and a lone pixel (2, 6).
  gt = square(2, 2) | box((H, W), (2, 3), (6, 7))
  calls = []
  ious = click_ious(oracle(calls), gt, max_clicks=8)
  # 1. (2, 2)+ (distance 2): pred = the square, IoU 9/10.
  # 2. (2, 6)+ (the FN pixel): pred adds square(2, 6), IoU 10/18.
  # 3. FP ring of square(2, 6), all at distance 1: (1, 5)-, erasing (1..2, 5..6); IoU 9/15.
  # 4. FN (2, 6) is clicked already, so FP (1, 7)-, erasing (1..2, 7); IoU 9/13.
  # 5. FP (3, 5..7): (3, 5)-, erasing (3, 5..6); IoU 9/11.
  # 6. FP (3, 7)-; pred = the square again, IoU 9/10.
  # 7. Only the clicked FN (2, 6) is left: no click, the last IoU repeats.
  np.testing.assert_allclose(ious, [9 / 10, 10 / 18, 9 / 15, 9 / 13, 9 / 11] + [9 / 10] * 3)
  clicks = [(2, 2, True), (2, 6, True), (1, 5, False), (1, 7, False), (3, 5, False), (3, 7, False)]
  assert calls == [clicks[:k] for k in range(1, 7)]


def test_click_ious_stop_at_and_no_error():
  gt = square(2, 2) | box((H, W), (2, 3), (6, 7))
  calls = []
  # IoU 0.9 after the first click: reaching stop_at exactly stops, and 0.9 repeats.
  np.testing.assert_allclose(click_ious(oracle(calls), gt, max_clicks=4, stop_at=0.9), [0.9] * 4)
  assert len(calls) == 1
  calls.clear()
  ious = click_ious(oracle(calls), gt, max_clicks=4, stop_at=0.95)
  np.testing.assert_allclose(ious, [9 / 10, 10 / 18, 9 / 15, 9 / 13])
  assert len(calls) == 4
  calls.clear()
  np.testing.assert_allclose(click_ious(oracle(calls), np.zeros((H, W), bool), max_clicks=3), 1.0)
  assert not calls
  # Ignoring the lone pixel: the first click is already exact.
  ious = click_ious(oracle(calls), gt, max_clicks=3, ignore=box((H, W), (2, 3), (6, 7)))
  np.testing.assert_allclose(ious, [1.0, 1.0, 1.0])
  assert len(calls) == 1


# --- NoC, NoF, mIoU@k --------------------------------------------------------------------------

IOUS = np.array(
  [
    [0.50, 0.80, 0.85, 0.90, 0.95, 0.95],  # 0.85 exactly at click 3, 0.90 at click 4
    [0.91, 0.92, 0.93, 0.94, 0.95, 0.96],  # both at click 1
    [0.10, 0.20, 0.30, 0.40, 0.50, 0.60],  # never
    [0.80, 0.84, 0.86, 0.70, 0.88, 0.89],  # 0.85 at click 3 (dropping later), 0.90 never
  ]
)


def test_noc():
  np.testing.assert_array_equal(noc(IOUS, 0.85, max_clicks=6), [3, 1, 6, 3])
  np.testing.assert_array_equal(noc(IOUS, 0.90, max_clicks=6), [4, 1, 6, 6])
  # Only the first max_clicks entries count; unreached rows score max_clicks.
  np.testing.assert_array_equal(noc(IOUS, 0.90, max_clicks=3), [3, 1, 3, 3])
  np.testing.assert_array_equal(noc(IOUS, 0.95), [5, 5, 20, 20])
  with pytest.raises(ValueError, match="shape"):
    noc(IOUS[0], 0.85)


def test_interactive_scores():
  s = interactive_scores(IOUS, max_clicks=6)
  assert s["noc@85"] == pytest.approx((3 + 1 + 6 + 3) / 4)
  assert s["noc@90"] == pytest.approx((4 + 1 + 6 + 6) / 4)
  assert (s["nof@85"], s["nof@90"]) == (1, 2)
  assert s["miou@1"] == pytest.approx((0.50 + 0.91 + 0.10 + 0.80) / 4)
  assert s["miou@3"] == pytest.approx((0.85 + 0.93 + 0.30 + 0.86) / 4)
  assert s["miou@5"] == pytest.approx((0.95 + 0.95 + 0.50 + 0.88) / 4)
  assert all(type(v) is (int if k.startswith("nof") else float) for k, v in s.items())


def test_nof_counts_only_objects_that_never_reach():
  # Reaching 0.85 exactly at the last click: NoC = max_clicks, yet not a failure.
  s = interactive_scores([[0.1, 0.2, 0.3, 0.4, 0.85]], max_clicks=5)
  assert (s["noc@85"], s["nof@85"], s["noc@90"], s["nof@90"]) == (5.0, 0, 5.0, 1)
  with pytest.raises(ValueError, match="at least 5"):
    interactive_scores(IOUS[:, :4])

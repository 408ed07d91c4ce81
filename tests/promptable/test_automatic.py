"""`SamAutomaticMaskGenerator` against the official generator on the same tiny random weights and
a real photograph: the same records in the same order; its parts (point grid, stability score,
boxes of masks, RLEs) against the official helpers and by hand.

The official generator imports torchvision, for which a test-local shim stands in (PIL resize,
greedy batched NMS; see `official_promptable.py`).
"""

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from references import require_official_sam

from segjax.promptable import SamAutomaticMaskGenerator, SamPredictor
from segjax.promptable.automatic import mask_to_rle, masks_to_boxes, point_grid, stability_score

torch = require_official_sam()
import official_promptable as official  # noqa: E402

IMAGE = official.photo()
# Relaxed for random weights, whose logits are within about ±1 (so a smaller stability offset):
# 36 points in batches of 16 (the last one padded), 108 candidate masks, of which each filter drops
# about half. The random model's masks are large, similar blobs: NMS at 0.9 keeps two (the next
# NMS_THRESHOLDS, 1.0, none suppressed, compares the masks the filters keep).
OPTIONS = {
  "points_per_side": 6,
  "points_per_batch": 16,
  "pred_iou_thresh": 0.03,
  "stability_score_thresh": 0.1,
  "stability_score_offset": 0.1,
}
NMS_THRESHOLDS = {0.9: range(2, 3), 1.0: range(30, 60)}  # and the number of masks they keep
BOUNDARY_FRACTION = 1e-4  # of a mask's pixels that may differ from the official's


@pytest.fixture(scope="module")
def models():
  return official.models()


@pytest.fixture(scope="module", params=NMS_THRESHOLDS)
def box_nms_thresh(request):
  return request.param


@pytest.fixture(scope="module")
def records(models, box_nms_thresh):
  return SamAutomaticMaskGenerator(models[1:], **OPTIONS, box_nms_thresh=box_nms_thresh).generate(
    IMAGE
  )


def test_records_match_official(models, box_nms_thresh, records):
  reference = official.SamAutomaticMaskGenerator(
    models[0], **OPTIONS, box_nms_thresh=box_nms_thresh
  )
  with official.one_thread():
    want_records = reference.generate(IMAGE)
  assert len(want_records) in NMS_THRESHOLDS[box_nms_thresh]
  assert len(records) == len(want_records)
  for i, (got, want) in enumerate(zip(records, want_records, strict=True)):
    assert got.keys() == want.keys()
    assert got["bbox"] == want["bbox"], i
    assert got["crop_box"] == want["crop_box"] == [0, 0, 512, 600]
    np.testing.assert_allclose(got["point_coords"], want["point_coords"], rtol=1e-12)
    np.testing.assert_allclose(got["predicted_iou"], want["predicted_iou"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(got["stability_score"], want["stability_score"], rtol=0, atol=1e-4)
    mask, want_mask = got["segmentation"], want["segmentation"]
    assert mask.shape == (600, 512) and mask.dtype == bool
    assert (mask != want_mask).mean() <= BOUNDARY_FRACTION, i
    assert got["area"] == mask.sum() and abs(got["area"] - want["area"]) <= 600 * 512 * 1e-4
    assert got["predicted_iou"] > OPTIONS["pred_iou_thresh"]
    assert got["stability_score"] >= OPTIONS["stability_score_thresh"]
  scores = [r["predicted_iou"] for r in records]
  assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("mode", ["uncompressed_rle", "coco_rle"])
def test_rle_output_modes(models, box_nms_thresh, records, mode):
  encoded = SamAutomaticMaskGenerator(
    models[1:], **OPTIONS, box_nms_thresh=box_nms_thresh, output_mode=mode
  ).generate(IMAGE)
  assert len(encoded) == len(records)
  for got, binary in zip(encoded, records, strict=True):
    mask = binary["segmentation"]
    rle = official.amg.mask_to_rle_pytorch(torch.from_numpy(mask[None]))[0]
    if mode == "coco_rle":
      assert got["segmentation"] == official.amg.coco_encode_rle(rle)
      np.testing.assert_array_equal(mask_utils.decode(got["segmentation"]), mask)
    else:
      assert got["segmentation"] == rle
    assert got["area"] == binary["area"] == official.amg.area_from_rle(rle)


def test_a_shared_predictor_keeps_the_image(models, box_nms_thresh, records):
  predictor = SamPredictor(*models[1:])
  generator = SamAutomaticMaskGenerator(predictor, **OPTIONS, box_nms_thresh=box_nms_thresh)
  again = generator.generate(IMAGE)
  assert predictor.is_image_set and predictor.original_size == (600, 512)
  assert [r["bbox"] for r in again] == [r["bbox"] for r in records]


def test_point_grid_is_official():
  for n in (1, 4, 7):
    np.testing.assert_array_equal(point_grid(n), official.amg.build_point_grid(n))


def test_stability_score_by_hand():
  logits = np.array(
    [
      [[-2.0, -0.5, 0.0, 0.5], [1.5, 2.0, 0.99, -1.0]],  # > 1: 2 pixels, > -1: 6; > 0: 4, > -2: 7
      [[-3.0, -2.0, -1.5, -1.0], [-1.0, -4.0, -2.0, -1.2]],  # empty, so NaN
      [[5.0, 5.0, -5.0, -5.0], [5.0, 5.0, -5.0, -5.0]],
    ],
    np.float32,
  )
  np.testing.assert_allclose(stability_score(logits, 1.0), [1 / 3, np.nan, 1.0])
  np.testing.assert_allclose(stability_score(logits, 1.0, threshold=-1.0), [4 / 7, 0.0, 1.0])


def test_stability_score_is_official():
  logits = np.random.default_rng(0).normal(size=(2, 3, 40, 50)).astype(np.float32)
  want = official.amg.calculate_stability_score(torch.from_numpy(logits), 0.0, 0.3).numpy()
  np.testing.assert_allclose(stability_score(logits, 0.3), want, rtol=1e-6)


def test_masks_to_boxes_is_official():
  masks = np.random.default_rng(0).random((5, 20, 30)) > 0.97
  masks[1] = False  # empty: [0, 0, 0, 0]
  masks[2] = False
  masks[2, 7, 11] = True  # one pixel: x0 == x1, y0 == y1
  want = official.amg.batched_mask_to_box(torch.from_numpy(masks)).numpy()
  np.testing.assert_array_equal(masks_to_boxes(masks), want)
  assert masks_to_boxes(masks).tolist()[1:3] == [[0, 0, 0, 0], [11, 7, 11, 7]]


def test_mask_to_rle_starts_with_zeros():
  mask = np.array([[1, 0, 1], [1, 1, 0]], bool)  # column-major: 1 1 0 1 1 0
  assert mask_to_rle(mask) == {"size": [2, 3], "counts": [0, 2, 1, 2, 1]}
  assert mask_to_rle(~mask) == {"size": [2, 3], "counts": [2, 1, 2, 1]}


@pytest.mark.parametrize(
  ("options", "message"),
  [
    ({"crop_n_layers": 1}, "crop_n_layers=1: only 0"),
    ({"min_mask_region_area": 100}, "min_mask_region_area=100: only 0"),
    ({"output_mode": "png"}, "output_mode='png' is not one of"),
    ({"points_per_side": 0}, "points_per_side=0"),
  ],
)
def test_unsupported_options_raise(models, options, message):
  with pytest.raises(ValueError, match=message):
    SamAutomaticMaskGenerator(models[1:], **options)

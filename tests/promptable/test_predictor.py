"""`SamPredictor` against the official `SamPredictor` on the same tiny random weights and a real
photograph (600x512: not square, shrunk to 112x96 and padded): the image embedding, and masks,
IoUs and low-res logits for every kind of prompt; the image and prompt transforms; bad input.

The official predictor imports torchvision, for which a test-local shim stands in (PIL resize; see
`official_promptable.py`).
"""

import numpy as np
import pytest
from references import require_official_sam

from segjax.promptable import SamPredictor
from segjax.promptable.transforms import (
  postprocess_masks,
  resize_image,
  resized_shape,
  scale_boxes,
  scale_coords,
)

torch = require_official_sam()
import official_promptable as official  # noqa: E402

IMAGE = official.photo()
POINTS = {"point_coords": np.array([[250.0, 300.0], [120.5, 480.0]]), "point_labels": [1, 0]}
BOX = {"box": np.array([100.0, 150.0, 400.0, 520.0])}
PROMPTS = {
  "point": {"point_coords": POINTS["point_coords"][:1], "point_labels": [1]},
  "positive_and_negative": POINTS,
  "box": BOX,
  "points_and_box": {**POINTS, **BOX},
  "mask_and_point": {"point_coords": np.array([[300.0, 200.0]]), "point_labels": [1]},
}
# At most this fraction of mask pixels may differ from the official, and only where the official
# logit is within 1e-4 of the logits' scale from the threshold 0.
BOUNDARY_FRACTION = 1e-4


@pytest.fixture(scope="module")
def models():
  return official.models()


@pytest.fixture(scope="module")
def reference(models):
  predictor = official.SamPredictor(models[0])
  with official.one_thread():
    predictor.set_image(IMAGE)
  return predictor


@pytest.fixture(scope="module")
def predictor(models):
  predictor = SamPredictor(*models[1:])
  predictor.set_image(IMAGE)
  return predictor


@pytest.fixture(scope="module")
def previous_low_res(reference):
  """The best low-res logits of a one-point prediction, f32[1,28,28]: a mask prompt."""
  with official.one_thread():
    _, iou, low_res = reference.predict(**PROMPTS["point"])
  return low_res[np.argmax(iou)][None]


def _assert_close(got, want, what):
  got, want = np.asarray(got), np.asarray(want)
  assert got.shape == want.shape, (what, got.shape, want.shape)
  error, scale = np.abs(got - want).max(), np.abs(want).max()
  assert error <= 1e-4 * scale, (what, error, scale)


def test_image_embedding_matches(reference, predictor):
  assert predictor.original_size == (600, 512) and predictor.input_size == (112, 96)
  assert predictor.input_size == reference.input_size
  want = reference.get_image_embedding().numpy().transpose(0, 2, 3, 1)
  _assert_close(predictor.get_image_embedding(), want, "image embedding")


@pytest.mark.parametrize("multimask", [True, False], ids=["multimask", "single"])
@pytest.mark.parametrize("prompt", PROMPTS)
def test_predictions_match_official(reference, predictor, previous_low_res, prompt, multimask):
  prompts = dict(PROMPTS[prompt])
  if prompt == "mask_and_point":
    prompts["mask_input"] = previous_low_res
  with official.one_thread():
    want_logits, want_iou, want_low_res = reference.predict(
      **prompts, multimask_output=multimask, return_logits=True
    )
  logits, iou, low_res = predictor.predict(
    **prompts, multimask_output=multimask, return_logits=True
  )
  masks, iou_again, _ = predictor.predict(**prompts, multimask_output=multimask)

  k = 3 if multimask else 1
  assert masks.shape == (k, 600, 512) and masks.dtype == bool
  assert iou.shape == (k,) and low_res.shape == (k, 28, 28)
  _assert_close(iou, want_iou, "iou_predictions")
  _assert_close(low_res, want_low_res, "low_res_logits")
  _assert_close(logits, want_logits, "mask logits")
  np.testing.assert_array_equal(masks, logits > 0)
  np.testing.assert_array_equal(iou_again, iou)
  want_masks = want_logits > reference.model.mask_threshold
  differ = masks != want_masks
  assert differ.mean() <= BOUNDARY_FRACTION
  assert np.all(np.abs(want_logits[differ]) <= 1e-4 * np.abs(want_logits).max())
  assert 0 < want_masks.mean() < 1  # the comparison is not vacuous


def test_a_2d_mask_input_is_one_mask(predictor, previous_low_res):
  prompts = PROMPTS["mask_and_point"]
  with_3d = predictor.predict(**prompts, mask_input=previous_low_res)
  with_2d = predictor.predict(**prompts, mask_input=previous_low_res[0])
  for got, want in zip(with_2d, with_3d, strict=True):
    np.testing.assert_array_equal(got, want)


def test_a_checkpoint_file_gives_the_same_embedding(models, predictor, tmp_path):
  path = tmp_path / "sam_tiny.pth"
  torch.save(models[0].state_dict(), path)
  loaded = SamPredictor.from_checkpoint(path)
  assert loaded.config == predictor.config
  loaded.set_image(IMAGE)
  np.testing.assert_array_equal(loaded.get_image_embedding(), predictor.get_image_embedding())


@pytest.mark.parametrize("shape", [(600, 512), (37, 200), (20, 30), (112, 112)])
def test_image_and_prompt_transforms_match_official(shape):
  transform = official.ResizeLongestSide(112)
  image = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
  resized = resize_image(image, 112)  # shrinking and enlarging
  np.testing.assert_array_equal(resized, transform.apply_image(image))
  assert resized.shape[:2] == resized_shape(*shape, 112)
  coords = np.array([[0.0, 0.0], [13.5, 7.25], [shape[1], shape[0]]])
  np.testing.assert_array_equal(
    scale_coords(coords, shape, 112), transform.apply_coords(coords, shape)
  )
  boxes = np.array([[1.0, 2.0, 10.5, 19.0]])
  np.testing.assert_array_equal(scale_boxes(boxes, shape, 112), transform.apply_boxes(boxes, shape))


@pytest.mark.parametrize(
  ("input_size", "original_size"),
  [((112, 96), (600, 512)), ((84, 112), (63, 84)), ((112, 112), (112, 112))],
  ids=["enlarge", "shrink", "same"],
)
def test_postprocess_masks_is_torch_bilinear(models, input_size, original_size):
  low_res = np.random.default_rng(1).normal(size=(2, 3, 28, 28)).astype(np.float32)
  with torch.no_grad():
    want = models[0].postprocess_masks(torch.from_numpy(low_res), input_size, original_size)
  got = postprocess_masks(low_res, input_size, original_size, 112)
  np.testing.assert_allclose(got, want.numpy(), rtol=0, atol=1e-5)


def test_predict_before_set_image_raises(models):
  predictor = SamPredictor(*models[1:])
  assert not predictor.is_image_set
  with pytest.raises(RuntimeError, match="set_image"):
    predictor.predict(**PROMPTS["point"])
  with pytest.raises(RuntimeError, match="set_image"):
    predictor.get_image_embedding()


def test_reset_image_forgets_the_image(models):
  predictor = SamPredictor(*models[1:])
  predictor.set_image(IMAGE[:64, :80])
  assert predictor.is_image_set and predictor.original_size == (64, 80)
  predictor.reset_image()
  assert not predictor.is_image_set and predictor.original_size is None
  with pytest.raises(RuntimeError, match="set_image"):
    predictor.predict(**BOX)


@pytest.mark.parametrize(
  ("image", "message"),
  [
    (IMAGE.astype(np.float32), r"float32 of shape \(600, 512, 3\)"),
    (IMAGE[..., 0], r"uint8 of shape \(600, 512\)"),
    (np.dstack([IMAGE, IMAGE[..., :1]]), r"uint8 of shape \(600, 512, 4\)"),
  ],
  ids=["float", "gray", "rgba"],
)
def test_a_bad_image_is_named(predictor, image, message):
  with pytest.raises(ValueError, match=message):
    predictor.set_image(image)


@pytest.mark.parametrize(
  ("prompts", "message"),
  [
    ({"point_coords": POINTS["point_coords"]}, "point_labels must be given"),
    ({"point_labels": [1]}, "without point_coords"),
    ({"point_coords": POINTS["point_coords"], "point_labels": [1]}, r"N = 2; got shape \(1,\)"),
    ({"point_coords": np.zeros((2, 3)), "point_labels": [1, 1]}, r"got shape \(2, 3\)"),
    ({"box": np.zeros((1, 4))}, r"got shape \(1, 4\)"),
    ({"mask_input": np.zeros((1, 256, 256))}, r"f\[1,28,28\]; got shape \(1, 256, 256\)"),
  ],
  ids=["coords_alone", "labels_alone", "labels_short", "coords_3d", "box_2d", "mask_size"],
)
def test_bad_prompts_are_named(predictor, prompts, message):
  with pytest.raises(ValueError, match=message):
    predictor.predict(**prompts)

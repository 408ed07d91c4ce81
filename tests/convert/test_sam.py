"""The SAM converter against the official PyTorch model with random weights: the config read from
the shapes, image embeddings, and masks and IoUs for every kind of prompt."""

import re

import jax
import numpy as np
import pytest
from references import require_official_sam

from segjax.convert.sam import load
from segjax.errors import InputError
from segjax.models.sam import Sam, preprocess

torch = require_official_sam()
import official_sam  # noqa: E402

CONFIG = official_sam.CONFIG
MODEL = Sam(CONFIG)
IMAGE_HW = (112, 96)  # padded to 112x112 by `preprocess`

_rng = np.random.default_rng(0)
IMAGES = _rng.uniform(0, 255, (2, *IMAGE_HW, 3)).astype(np.float32)
POINTS = _rng.uniform(0, 100, (2, 3, 2)).astype(np.float32)
# A negative point and an explicit padding point (-1), which the official model also embeds.
LABELS = np.array([[1, 0, -1], [1, 1, 0]], np.int32)
BOXES = np.array([[10, 20, 80, 90], [5, 5, 50, 100]], np.float32)
MASKS = (3 * _rng.normal(size=(2, 28, 28, 1))).astype(np.float32)
PROMPTS = {
  "points": {"points": POINTS, "point_labels": LABELS},
  "box": {"boxes": BOXES},
  "points_and_box": {"points": POINTS, "point_labels": LABELS, "boxes": BOXES},
  "mask": {"mask_inputs": MASKS},
  "points_and_mask": {"points": POINTS, "point_labels": LABELS, "mask_inputs": MASKS},
  "nothing": {},
}


@pytest.fixture(scope="module")
def reference():
  return official_sam.randomize(official_sam.build(CONFIG), seed=0)


@pytest.fixture(scope="module")
def converted(reference):
  return load(reference.state_dict())  # torch tensors, as a user in a notebook would pass them


@pytest.fixture(scope="module")
def embeddings(converted):
  encode = jax.jit(
    lambda v, x: MODEL.apply(v, preprocess(x, CONFIG.image_size), method="encode_image")
  )
  return encode(converted[1], IMAGES)


@jax.jit
def _decode(variables, embeddings, prompts):
  """`{multimask_output: (masks, ious)}` for both settings, compiled once."""
  return {
    multimask: MODEL.apply(
      variables, embeddings, **prompts, multimask_output=multimask, method="decode"
    )
    for multimask in (True, False)
  }


def _assert_close(got, want, what):
  got, want = np.asarray(got), np.asarray(want)
  assert got.shape == want.shape, what
  # Relative to the scale of the values: float32 sums in a different order.
  error, scale = np.abs(got - want).max(), np.abs(want).max()
  assert error <= 1e-4 * scale, (what, error, scale)


def test_config_is_read_from_the_shapes(converted):
  assert converted[0] == CONFIG


def test_image_embeddings_match(reference, embeddings):
  with torch.no_grad(), official_sam.one_thread():
    images = [reference.preprocess(torch.from_numpy(x.transpose(2, 0, 1))) for x in IMAGES]
    want = reference.image_encoder(torch.stack(images)).numpy().transpose(0, 2, 3, 1)
  _assert_close(embeddings, want, "image embeddings")


@pytest.mark.parametrize("prompt", PROMPTS)
def test_masks_and_ious_match_official_forward(reference, converted, embeddings, prompt):
  prompts = PROMPTS[prompt]
  # The official forward: one record per image, each with a batch of one prompt set.
  records = []
  for i, image in enumerate(IMAGES):
    record = {"image": torch.from_numpy(image.transpose(2, 0, 1)), "original_size": IMAGE_HW}
    if "points" in prompts:
      record["point_coords"] = torch.from_numpy(POINTS[i : i + 1])
      record["point_labels"] = torch.from_numpy(LABELS[i : i + 1])
    if "boxes" in prompts:
      record["boxes"] = torch.from_numpy(BOXES[i : i + 1])
    if "mask_inputs" in prompts:
      record["mask_inputs"] = torch.from_numpy(MASKS[i : i + 1].transpose(0, 3, 1, 2))
    records.append(record)
  for multimask, (masks, ious) in _decode(converted[1], embeddings, prompts).items():
    with official_sam.one_thread():
      outputs = reference(records, multimask)
    want_masks = np.concatenate([o["low_res_logits"].numpy() for o in outputs])
    want_ious = np.concatenate([o["iou_predictions"].numpy() for o in outputs])
    _assert_close(masks, want_masks, f"masks, multimask_output={multimask}")
    _assert_close(ious, want_ious, f"ious, multimask_output={multimask}")
    assert masks.shape == (2, 3 if multimask else 1, 28, 28)


def test_a_saved_file_loads_like_the_state_dict(reference, converted, tmp_path):
  path = tmp_path / "sam_tiny.pth"
  torch.save(reference.state_dict(), path)
  config, variables = load(path)
  assert config == converted[0]
  assert jax.tree.structure(variables) == jax.tree.structure(converted[1])
  assert jax.tree.all(jax.tree.map(np.array_equal, variables, converted[1]))


@pytest.mark.parametrize(
  "key",
  [
    "mask_decoder.iou_token.weight",
    "image_encoder.pos_embed",
    "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix",
  ],
)
def test_a_missing_key_is_named(reference, key):
  state_dict = {k: v.numpy() for k, v in reference.state_dict().items() if k != key}
  with pytest.raises(InputError, match=re.escape(key)):
    load(state_dict)


def test_an_unexpected_key_is_named(reference):
  state_dict = {k: v.numpy() for k, v in reference.state_dict().items()}
  state_dict["mask_decoder.extra_head.weight"] = np.zeros((4, 4), np.float32)
  with pytest.raises(InputError, match=re.escape("mask_decoder.extra_head.weight")):
    load(state_dict)


def test_a_misshapen_key_is_named(reference):
  state_dict = {k: v.numpy() for k, v in reference.state_dict().items()}
  key = "image_encoder.blocks.1.attn.proj.weight"
  state_dict[key] = np.zeros((64, 63), np.float32)
  with pytest.raises(InputError, match=rf"{re.escape(key)} has shape \(64, 63\).*needs \(64, 64\)"):
    load(state_dict)

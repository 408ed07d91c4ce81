"""Segment Anything modules: output shapes, parameter counts of the published models, window
partitioning and relative-position resampling. Equality with the official model is tested with
the converter (tests/convert/test_sam.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from references import require_official_sam

from segjax.models.sam import PIXEL_MEAN, PIXEL_STD, Sam, SamConfig, preprocess
from segjax.models.sam.image_encoder import (
  ImageEncoder,
  get_rel_pos,
  window_partition,
  window_unpartition,
)
from segjax.models.sam.mask_decoder import MaskDecoder
from segjax.models.sam.prompt_encoder import PromptEncoder
from segjax.models.sam.transformer import TwoWayTransformer

TINY = SamConfig(
  image_size=112,
  encoder_depth=2,
  encoder_width=32,
  encoder_heads=2,
  encoder_window=4,
  global_attention_indexes=(1,),
  prompt_dim=32,
  decoder_mlp_dim=64,
  iou_head_hidden=48,
  mask_in_chans=8,
)
S, D = TINY.embedding_size, TINY.prompt_dim  # 7, 32
KEY = jax.random.key(0)
# `sum(p.numel() for p in model.parameters())` of the official `sam_model_registry[name]()`, per
# part; `test_parameter_counts_are_the_official_ones` checks them when segment_anything is here.
OFFICIAL_COUNTS = {
  "vit_b": {"image_encoder": 89_670_912, "prompt_encoder": 6_220, "mask_decoder": 4_058_340},
  "vit_l": {"image_encoder": 308_278_272, "prompt_encoder": 6_220, "mask_decoder": 4_058_340},
  "vit_h": {"image_encoder": 637_026_048, "prompt_encoder": 6_220, "mask_decoder": 4_058_340},
}


def _shapes(module, *args, method=None, dtype=jnp.float32):
  """Output shapes and dtypes of `module` initialised on `args`, without computing anything."""
  init = lambda: module.init_with_output(KEY, *args, method=method)[0]
  return jax.tree.map(lambda x: (x.shape, x.dtype), jax.eval_shape(init))


def _official_sam():
  require_official_sam()
  import official_sam

  return official_sam


def test_image_encoder_shape():
  images = jnp.zeros((2, 112, 112, 3))
  assert _shapes(ImageEncoder(TINY), images) == ((2, S, S, D), jnp.float32)


@pytest.mark.parametrize(
  "prompts, tokens",
  [
    ({"points": (2, 3, 2)}, 3 + 1),  # the official padding point
    ({"boxes": (2, 4)}, 2),
    ({"points": (2, 3, 2), "boxes": (2, 4)}, 3 + 2),
    ({"masks": (2, 4 * S, 4 * S, 1)}, 0),
  ],
)
def test_prompt_encoder_shapes(prompts, tokens):
  points = jnp.zeros(prompts["points"]) if "points" in prompts else None
  labels = jnp.ones(prompts["points"][:2], jnp.int32) if "points" in prompts else None
  boxes = jnp.zeros(prompts["boxes"]) if "boxes" in prompts else None
  masks = jnp.zeros(prompts["masks"]) if "masks" in prompts else None
  sparse, dense = _shapes(PromptEncoder(TINY), points, labels, boxes, masks)
  assert sparse == ((2, tokens, D), jnp.float32)
  assert dense == ((2, S, S, D), jnp.float32)
  dense_pe = _shapes(PromptEncoder(TINY), method="dense_pe")
  assert dense_pe == ((S, S, D), jnp.float32)


def test_two_way_transformer_shapes():
  transformer = TwoWayTransformer(depth=2, heads=8, mlp_dim=64)
  image, tokens = jnp.zeros((2, S, S, D)), jnp.zeros((2, 9, D))
  queries, keys = _shapes(transformer, image, image, tokens)
  assert queries == ((2, 9, D), jnp.float32)
  assert keys == ((2, S * S, D), jnp.float32)


@pytest.mark.parametrize("multimask_output, masks", [(True, 3), (False, 1)])
def test_mask_decoder_shapes(multimask_output, masks):
  image = jnp.zeros((2, S, S, D))
  args = image, jnp.zeros((S, S, D)), jnp.zeros((2, 5, D)), image, multimask_output
  low_res, iou = _shapes(MaskDecoder(TINY), *args)
  assert low_res == ((2, masks, 4 * S, 4 * S), jnp.float32)
  assert iou == ((2, masks), jnp.float32)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_sam_shapes_and_variables(dtype):
  model = Sam(TINY, dtype=dtype)
  images = jnp.zeros((2, 112, 112, 3))
  variables = jax.eval_shape(model.init, KEY, images)
  pe_layer = variables["buffers"]["prompt_encoder"]["pe_layer"]
  assert pe_layer["positional_encoding_gaussian_matrix"].shape == (2, D // 2)
  # init creates the mask prompt's down-sampler without a mask prompt.
  assert "mask_downscaling_6" in variables["params"]["prompt_encoder"]
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(variables))
  embeddings = jax.ShapeDtypeStruct((2, S, S, D), jnp.float32)
  decode = lambda v, e: model.apply(
    v, e, jnp.zeros((2, 4, 2)), jnp.ones((2, 4), jnp.int32), jnp.zeros((2, 4)), method="decode"
  )
  masks, iou = jax.eval_shape(decode, variables, embeddings)
  assert (masks.shape, masks.dtype, iou.shape) == ((2, 3, 4 * S, 4 * S), jnp.float32, (2, 3))


@pytest.mark.parametrize("name", OFFICIAL_COUNTS)
def test_parameter_counts_of_the_published_models(name):
  config = getattr(SamConfig, name)()
  images = jax.ShapeDtypeStruct((1, 1024, 1024, 3), jnp.float32)
  params = jax.eval_shape(Sam(config).init, KEY, images)["params"]
  counts = {part: sum(x.size for x in jax.tree.leaves(tree)) for part, tree in params.items()}
  assert counts == OFFICIAL_COUNTS[name]


@pytest.mark.parametrize("name", OFFICIAL_COUNTS)
def test_parameter_counts_are_the_official_ones(name):
  official_sam = _official_sam()
  import torch

  with torch.device("meta"):  # shapes only
    model = official_sam.sam_model_registry[name]()
  counts = {
    part: sum(p.numel() for p in getattr(model, part).parameters())
    for part in OFFICIAL_COUNTS[name]
  }
  assert counts == OFFICIAL_COUNTS[name]


def test_window_partition_pads_and_round_trips():
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 7, 9, 3)), jnp.float32)
  windows, pad_hw = window_partition(x, 4)
  assert pad_hw == (8, 12) and windows.shape == (2 * 2 * 3, 4, 4, 3)
  # Row-major windows: window (1, 2) of image 1 is rows 4:8, columns 8:12, zero-padded.
  np.testing.assert_array_equal(windows[6 + 5, :3, :1], x[1, 4:7, 8:9])
  np.testing.assert_array_equal(windows[6 + 5, 3:], 0)
  np.testing.assert_array_equal(windows[6 + 5, :, 1:], 0)
  np.testing.assert_array_equal(window_unpartition(windows, 4, pad_hw, (7, 9)), x)


def _get_rel_pos_reference(q_size, k_size, table):
  """The official `get_rel_pos` in numpy, written anew: np.interp is F.interpolate's linear mode
  with half-pixel centres, clamped at both ends."""
  length = 2 * max(q_size, k_size) - 1
  if table.shape[0] != length:
    source = (np.arange(length) + 0.5) * table.shape[0] / length - 0.5
    table = np.stack([np.interp(source, np.arange(len(table)), c) for c in table.T], axis=1)
  q_scale, k_scale = max(k_size / q_size, 1.0), max(q_size / k_size, 1.0)
  out = np.empty((q_size, k_size, table.shape[1]))
  for i in range(q_size):
    for j in range(k_size):
      out[i, j] = table[int(i * q_scale - j * k_scale + (k_size - 1) * k_scale)]
  return out


# (q_size, k_size, table length): as stored; up- and down-sampled; queries and keys of two sizes.
REL_POS_CASES = [(7, 7, 13), (7, 7, 9), (7, 7, 27), (4, 8, 15), (8, 4, 9), (5, 3, 11)]


@pytest.mark.parametrize("q_size, k_size, length", REL_POS_CASES)
def test_get_rel_pos_matches_a_numpy_reference(q_size, k_size, length):
  table = np.random.default_rng(length).normal(size=(length, 6)).astype(np.float32)
  got = np.asarray(get_rel_pos(q_size, k_size, jnp.asarray(table)))
  # The reference interpolates at float64 positions, torch and segjax at float32 ones.
  np.testing.assert_allclose(got, _get_rel_pos_reference(q_size, k_size, table), atol=1e-5)


@pytest.mark.parametrize("q_size, k_size, length", REL_POS_CASES)
def test_get_rel_pos_matches_the_official_one(q_size, k_size, length):
  official_sam = _official_sam()
  import torch

  table = np.random.default_rng(length).normal(size=(length, 6)).astype(np.float32)
  want = official_sam.get_rel_pos(q_size, k_size, torch.from_numpy(table)).numpy()
  np.testing.assert_allclose(get_rel_pos(q_size, k_size, jnp.asarray(table)), want, atol=1e-6)


def test_padding_points_are_embedded_without_their_coordinates():
  encoder = PromptEncoder(TINY)
  labels = jnp.array([[1, 0, -1, -1]], jnp.int32)
  points = jnp.array([[[10.0, 20.0], [50.0, 60.0], [0.0, 0.0], [0.0, 0.0]]])
  elsewhere = points.at[0, 2:].set(jnp.array([[30.0, 99.0], [111.0, 5.0]]))
  shapes = jax.eval_shape(encoder.init, KEY, points, labels, None, None)
  rng = np.random.default_rng(0)  # faster than compiling the initialisers
  variables = jax.tree.map(lambda x: rng.normal(size=x.shape).astype(np.float32), shapes)
  embed = jax.jit(lambda p: encoder.apply(variables, p, labels, None, None)[0])
  a, b = embed(points), embed(elsewhere)
  np.testing.assert_array_equal(a, b)
  assert a.shape == (1, 5, D)
  # Each padding point, and the one the encoder adds, is not_a_point_embed; real points are not.
  not_a_point = variables["params"]["not_a_point_embed"][0]
  np.testing.assert_array_equal(a[0, 2:], jnp.broadcast_to(not_a_point, (3, D)))
  assert not np.allclose(a[0, :2], not_a_point)


def test_preprocess_normalises_and_pads_at_the_bottom_right():
  images = jnp.full((1, 80, 100, 3), 200.0)
  x = preprocess(images, 112)
  assert x.shape == (1, 112, 112, 3)
  expected = (200 - np.array(PIXEL_MEAN)) / np.array(PIXEL_STD)
  np.testing.assert_allclose(x[0, :80, :100], np.broadcast_to(expected, (80, 100, 3)), rtol=1e-6)
  np.testing.assert_array_equal(x[0, 80:], 0)
  np.testing.assert_array_equal(x[0, :, 100:], 0)

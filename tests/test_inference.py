"""Tests for segjax.inference against numpy references: mmsegmentation's window offsets and
overlap averaging, nnU-Net's Gaussian, and test-time augmentation run by hand."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage, special

from segjax import inference
from segjax.inference import blend_weights, make_inference, sliding_window, window_starts

NUM_CLASSES = 3
WINDOW, STRIDE = (16, 16), (10, 12)


class ConvNet(nn.Module):
  """Two 3x3 convolutions: each logit sees a 5x5 neighbourhood, zero-padded at the border."""

  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Conv(4, (3, 3))(x))
    return nn.Conv(NUM_CLASSES, (3, 3))(x)


@pytest.fixture(scope="module")
def conv_fn():
  model = ConvNet()
  variables = model.init(jax.random.key(0), jnp.zeros((1, *WINDOW, 3)))
  return jax.jit(functools.partial(model.apply, variables))


@pytest.fixture(scope="module")
def symmetric_conv_fn():
  """The conv net with kernels averaged with their horizontal mirror: commutes with flips."""
  model = ConvNet()
  variables = model.init(jax.random.key(0), jnp.zeros((1, *WINDOW, 3)))
  variables = jax.tree_util.tree_map_with_path(
    lambda path, v: (v + v[:, ::-1]) / 2 if path[-1].key == "kernel" else v, variables
  )
  return jax.jit(functools.partial(model.apply, variables))


def pointwise_fn(images):
  """A per-pixel MLP: logits at a pixel depend on that pixel's value only."""
  rng = np.random.default_rng(1)
  hidden = jnp.asarray(rng.normal(size=(3, 5)), jnp.float32)
  out = jnp.asarray(rng.normal(size=(5, NUM_CLASSES)), jnp.float32)
  return jnp.tanh(images @ hidden) @ out


def random_images(shape, seed=0):
  return np.random.default_rng(seed).normal(size=(*shape, 3)).astype(np.float32)


def mmseg_starts(size, crop, stride):
  """`EncoderDecoder.slide_inference`'s offsets along one axis, transcribed."""
  grids = max(size - crop + stride - 1, 0) // stride + 1
  starts = []
  for idx in range(grids):
    y1 = idx * stride
    y2 = min(y1 + crop, size)
    starts.append(max(y2 - crop, 0))
  return starts


def reference_slide(logits_fn, images, window, stride, weights):
  """Weighted overlap averaging in numpy, one `logits_fn` call per image and window."""
  b, h, w, _ = images.shape
  (wh, ww), (sh, sw) = window, stride
  hp, wp = max(h, wh), max(w, ww)
  padded = np.zeros((b, hp, wp, 3), np.float32)
  padded[:, :h, :w] = images
  total = np.zeros((b, hp, wp, NUM_CLASSES))
  count = np.zeros((hp, wp, 1))
  for y in mmseg_starts(hp, wh, sh):
    for x in mmseg_starts(wp, ww, sw):
      for i in range(b):
        logits = np.asarray(logits_fn(padded[i : i + 1, y : y + wh, x : x + ww]), np.float64)
        total[i, y : y + wh, x : x + ww] += logits[0] * weights[:, :, None]
      count[y : y + wh, x : x + ww] += weights[:, :, None]
  return (total / count)[:, :h, :w]


def reference_tta(infer, images, sizes, flip):
  """log of the mean softmax over (size, flip) runs, each resized back to the image size."""
  b, h, w, _ = images.shape
  probs = []
  for size in sizes:
    x = images
    if size != (h, w):
      x = np.asarray(jax.image.resize(images, (b, *size, 3), "bilinear", antialias=False))
    for flipped in [False, True] if flip else [False]:
      logits = np.asarray(infer(x[:, :, ::-1] if flipped else x))
      if flipped:
        logits = logits[:, :, ::-1]
      if size != (h, w):
        shape = (b, h, w, NUM_CLASSES)
        logits = np.asarray(jax.image.resize(logits, shape, "bilinear", antialias=False))
      probs.append(special.softmax(logits.astype(np.float64), axis=-1))
  return np.log(np.mean(probs, axis=0))


def nnunet_gaussian(tile_size, sigma_scale=1.0 / 8):
  """nnU-Net v2 `compute_gaussian`, transcribed (float64, no torch)."""
  tmp = np.zeros(tile_size)
  tmp[tuple(i // 2 for i in tile_size)] = 1
  gaussian = ndimage.gaussian_filter(tmp, [i * sigma_scale for i in tile_size], 0, mode="constant")
  gaussian /= gaussian.max()
  gaussian[gaussian == 0] = gaussian[gaussian != 0].min()
  return gaussian


@pytest.mark.parametrize(
  "size, window, stride, expected",
  [
    (10, 4, 3, [0, 3, 6]),
    (11, 4, 3, [0, 3, 6, 7]),
    (3, 4, 3, [0]),
    (4, 4, 2, [0]),
    (8, 4, 4, [0, 4]),
    (9, 4, 4, [0, 4, 5]),
    (37, 16, 10, [0, 10, 20, 21]),
    (45, 16, 12, [0, 12, 24, 29]),
  ],
)
def test_window_starts(size, window, stride, expected):
  assert window_starts(size, window, stride) == expected


def test_window_starts_match_mmsegmentation():
  for size in range(1, 30):
    for window in range(1, 12):
      for stride in range(1, window + 1):
        assert window_starts(size, window, stride) == mmseg_starts(size, window, stride)


def test_uniform_weights_are_ones():
  np.testing.assert_array_equal(blend_weights((5, 7), "uniform"), np.ones((5, 7)))


@pytest.mark.parametrize("window", [(16, 12), (9, 7), (1, 2)])
def test_gaussian_weights(window):
  weights = blend_weights(window, "gaussian")
  assert weights.shape == window and weights.dtype == np.float32
  np.testing.assert_array_equal(weights, weights[::-1])
  np.testing.assert_array_equal(weights, weights[:, ::-1])
  assert weights.max() == 1 and weights.min() > 0
  h, w = window
  centre = weights[(h - 1) // 2 : h // 2 + 1, (w - 1) // 2 : w // 2 + 1]
  assert (centre == weights.max()).all()


@pytest.mark.parametrize("window", [(9, 7), (15, 13)])
def test_gaussian_weights_match_nnunet_for_odd_windows(window):
  # nnU-Net centres at size // 2, the centre pixel only for odd sizes.
  np.testing.assert_allclose(blend_weights(window, "gaussian"), nnunet_gaussian(window), rtol=1e-6)


@pytest.mark.parametrize("blend", inference.BLENDS)
def test_slide_on_one_window_is_whole_image(conv_fn, blend):
  images = random_images((2, *WINDOW))
  slide = sliding_window(conv_fn, images, window_hw=WINDOW, stride_hw=(8, 8), blend=blend)
  np.testing.assert_allclose(slide, conv_fn(images), atol=1e-6)


@pytest.mark.parametrize("blend", inference.BLENDS)
@pytest.mark.parametrize("shape", [(37, 45), (11, 13), (11, 45)])
def test_slide_of_pointwise_model_is_whole_image(shape, blend):
  # 2 images x up to 16 windows in chunks of <= 5: the last chunk holds invalid entries.
  images = random_images((2, *shape))
  slide = jax.jit(
    functools.partial(
      sliding_window,
      pointwise_fn,
      window_hw=WINDOW,
      stride_hw=STRIDE,
      blend=blend,
      batch_windows=5,
    )
  )(images)
  assert slide.shape == (2, *shape, NUM_CLASSES)
  np.testing.assert_allclose(slide, pointwise_fn(images), atol=1e-5)


@pytest.mark.parametrize("blend", inference.BLENDS)
@pytest.mark.parametrize("shape", [(23, 29), (11, 29)])
def test_slide_matches_numpy_reference(conv_fn, shape, blend):
  images = random_images((2, *shape), seed=2)
  weights = blend_weights(WINDOW, blend)
  expected = reference_slide(conv_fn, images, WINDOW, STRIDE, weights)
  slide = sliding_window(conv_fn, images, window_hw=WINDOW, stride_hw=STRIDE, blend=blend)
  np.testing.assert_allclose(slide, expected, atol=1e-5)
  # A non-pointwise model: windows see different context, so slide != whole image.
  assert not np.allclose(slide, conv_fn(images), atol=1e-3)


def test_tta_without_augmentation_is_the_logits(conv_fn):
  images = random_images((2, 22, 30))
  np.testing.assert_array_equal(inference.multi_scale_flip(conv_fn, images), conv_fn(images))
  assert make_inference(conv_fn) is conv_fn


def test_flip_of_flip_symmetric_model_is_exact(symmetric_conv_fn):
  images = random_images((2, 22, 30))
  logits = symmetric_conv_fn(images)
  log_probs = inference.multi_scale_flip(symmetric_conv_fn, images, flip=True)
  np.testing.assert_array_equal(log_probs.argmax(-1), logits.argmax(-1))
  np.testing.assert_allclose(log_probs, jax.nn.log_softmax(logits), atol=1e-5)


@pytest.mark.parametrize("flip", [False, True])
def test_multi_scale_matches_reference(conv_fn, flip):
  images = random_images((2, 22, 30), seed=3)
  expected = reference_tta(conv_fn, images, [(11, 15), (22, 30)], flip)
  log_probs = inference.multi_scale_flip(conv_fn, images, scales=(0.5, 1.0), flip=flip)
  np.testing.assert_allclose(log_probs, expected, atol=1e-5)
  assert not np.allclose(log_probs, jax.nn.log_softmax(conv_fn(images)), atol=1e-3)


def test_scaled_sizes_are_rounded():
  images = random_images((1, 22, 30))
  sizes = []
  record = lambda x: sizes.append(x.shape[1:3]) or pointwise_fn(x)
  inference.multi_scale_flip(pointwise_fn, images, scales=(0.5, 0.7, 1.3), infer=record)
  assert sizes == [(11, 15), (15, 21), (29, 39)]


def test_jitted_slide_with_tta_matches_reference(conv_fn):
  images = random_images((2, 22, 30), seed=4)
  infer = make_inference(
    conv_fn, mode="slide", window_hw=WINDOW, stride_hw=STRIDE, scales=(0.5, 1.0), flip=True
  )
  log_probs = jax.jit(infer)(images)
  weights = blend_weights(WINDOW, "gaussian")  # make_inference's default blend
  slide = lambda x: reference_slide(conv_fn, x, WINDOW, STRIDE, weights)
  expected = reference_tta(slide, images, [(11, 15), (22, 30)], flip=True)
  np.testing.assert_allclose(log_probs, expected, atol=1e-5)


@pytest.mark.parametrize(
  "kwargs, name",
  [
    ({"mode": "tile"}, "tile"),
    ({"blend": "cosine"}, "cosine"),
    ({"mode": "slide", "stride_hw": (8, 8)}, "window_hw"),
    ({"mode": "slide", "window_hw": (16, 16)}, "stride_hw"),
    ({"mode": "slide", "window_hw": (16, 0), "stride_hw": (8, 8)}, "window_hw"),
    ({"mode": "slide", "window_hw": (16, 16), "stride_hw": (0, 8)}, "stride_hw"),
    ({"mode": "slide", "window_hw": (16, 16), "stride_hw": (20, 8)}, "stride_hw"),
    ({"mode": "slide", "window_hw": (16, 16), "stride_hw": (8, 20)}, "stride_hw"),
    ({"mode": "slide", "window_hw": (16, 16), "stride_hw": (8,)}, "stride_hw"),
    ({"mode": "slide", "window_hw": (16, 16), "stride_hw": (8, 8), "batch_windows": 0}, "batch"),
    ({"scales": ()}, "scales"),
    ({"scales": (0.5, -1.0)}, "scales"),
  ],
)
def test_make_inference_rejects_invalid_arguments(kwargs, name):
  with pytest.raises(ValueError, match=name):
    make_inference(pointwise_fn, **kwargs)


def test_functions_reject_invalid_arguments():
  images = random_images((1, 8, 8))
  with pytest.raises(ValueError, match="cosine"):
    blend_weights((4, 4), "cosine")
  with pytest.raises(ValueError, match="stride"):
    window_starts(10, 4, 0)
  with pytest.raises(ValueError, match="stride_hw"):
    sliding_window(pointwise_fn, images, window_hw=(4, 4), stride_hw=(5, 4))
  with pytest.raises(ValueError, match="blend"):
    sliding_window(pointwise_fn, images, window_hw=(4, 4), stride_hw=(2, 2), blend="cosine")
  with pytest.raises(ValueError, match="scales"):
    inference.multi_scale_flip(pointwise_fn, images, scales=(0.0,))

"""Inference modes for semantic segmentation: whole image, sliding window, test-time augmentation.

A logits function is `logits_fn(images: f32[N,h,w,3]) -> f32[N,h,w,C]`, pure (e.g. a Flax model's
apply with bound variables). Every mode maps `images: f32[B,H,W,3]` to `logits: f32[B,H,W,C]`
with static shapes, so it runs under `jax.jit`.

References:
  mmsegmentation, `EncoderDecoder.slide_inference` (window offsets, overlap averaging) and
  `EncoderDecoder.aug_test` (multi-scale + flip: mean of the softmax probabilities).
  Isensee et al., "nnU-Net", Nature Methods 2021, and nnU-Net v2
  `inference/sliding_window_prediction.py::compute_gaussian` (Gaussian importance map).
"""

import functools
import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

MODES = ("whole", "slide")
BLENDS = ("uniform", "gaussian")

LogitsFn = Callable[[jax.Array], jax.Array]


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
  if value not in choices:
    raise ValueError(f"{name}={value!r} is not one of {choices}")


def _check_window(window_hw, stride_hw) -> tuple[tuple[int, int], tuple[int, int]]:
  """Validated (window_hw, stride_hw): positive (h, w) pairs, stride <= window per axis."""
  pairs = []
  for name, value in (("window_hw", window_hw), ("stride_hw", stride_hw)):
    if value is None or len(value) != 2 or any(int(v) != v or v < 1 for v in value):
      raise ValueError(f"{name} must be a (height, width) pair of positive ints, got {value!r}")
    pairs.append((int(value[0]), int(value[1])))
  window, stride = pairs
  if stride[0] > window[0] or stride[1] > window[1]:
    raise ValueError(
      f"stride_hw={stride} must not exceed window_hw={window}: pixels between windows would get "
      "no prediction"
    )
  return window, stride


def _check_scales(scales: Sequence[float]) -> tuple[float, ...]:
  scales = tuple(scales)
  if not scales or any(s <= 0 for s in scales):
    raise ValueError(f"scales must be a non-empty sequence of positive factors, got {scales!r}")
  return scales


def window_starts(size: int, window: int, stride: int) -> list[int]:
  """Top-left offsets of the windows covering [0, size) along one axis.

  0, stride, 2·stride, ..., with the last one moved back to size - window so that it ends at the
  border (mmsegmentation's slide inference); a single window at 0 when size <= window.
  """
  if window < 1 or stride < 1:
    raise ValueError(f"window and stride must be positive, got window={window}, stride={stride}")
  count = max(size - window + stride - 1, 0) // stride + 1
  return [max(min(i * stride, size - window), 0) for i in range(count)]


def blend_weights(window_hw: tuple[int, int], kind: str) -> np.ndarray:
  """Per-pixel weights of a window's logits when overlapping windows are averaged.

  Args:
    window_hw: (h, w) of the window.
    kind: "uniform" (ones) or "gaussian": nnU-Net's importance map, a Gaussian centred on the
      window with sigma = size/8 per axis, normalised to max 1, with its zeros (none in float32
      for 2D windows, whose tails end at ~4 sigma) raised to the smallest nonzero value.

  Returns:
    f32[h,w].
  """
  _check_choice("blend", kind, BLENDS)
  if kind == "uniform":
    return np.ones(window_hw, np.float32)
  axes = []
  for n in window_hw:
    centre, sigma = (n - 1) / 2, n / 8
    axes.append(np.exp(-0.5 * ((np.arange(n) - centre) / sigma) ** 2))
  weights = np.outer(*axes)
  weights = (weights / weights.max()).astype(np.float32)
  return np.maximum(weights, weights[weights > 0].min())


def sliding_window(
  logits_fn: LogitsFn,
  images: jax.Array,
  *,
  window_hw: tuple[int, int],
  stride_hw: tuple[int, int],
  blend: str = "uniform",
  batch_windows: int = 8,
) -> jax.Array:
  """Sliding-window inference: overlapping windows, blended back into full-size logits.

  An image smaller than the window along an axis is zero-padded (bottom/right; zero is the
  normalised mean) up to the window, and the padding is cut from the result. The windows, at
  static offsets (`window_starts`), run through `logits_fn` in one `lax.scan` of calls on at most
  `batch_windows` windows each (one trace of `logits_fn`; memory of one chunk plus the canvas).
  Their logits, weighted by `blend_weights`, are summed and divided by the summed weight.

  Args:
    logits_fn: f32[N,h,w,3] -> f32[N,h,w,C].
    images: f32[B,H,W,3].
    window_hw: window (h, w).
    stride_hw: offset between windows (h, w), each in [1, window].
    blend: "uniform" or "gaussian" (see `blend_weights`).
    batch_windows: most windows per `logits_fn` call, counting each image's windows.

  Returns:
    f32[B,H,W,C] logits (float64 if `logits_fn` returns it).
  """
  (wh, ww), (sh, sw) = _check_window(window_hw, stride_hw)
  weights = blend_weights((wh, ww), blend)
  if batch_windows < 1:
    raise ValueError(f"batch_windows must be positive, got {batch_windows}")
  b, h, w, channels = images.shape
  hp, wp = max(h, wh), max(w, ww)
  images = jnp.pad(images, ((0, 0), (0, hp - h), (0, wp - w), (0, 0)))
  ys, xs = window_starts(hp, wh, sh), window_starts(wp, ww, sw)

  total = np.zeros((hp, wp), np.float64)
  for y in ys:
    for x in xs:
      total[y : y + wh, x : x + ww] += weights

  # One (image, y, x) entry per window, split into equal chunks; the last chunk is filled up with
  # invalid entries, whose logits are dropped. Equal chunks waste fewer than n_chunks windows.
  entries = [(i, y, x) for i in range(b) for y in ys for x in xs]
  n_chunks = -(-len(entries) // batch_windows)
  chunk = -(-len(entries) // n_chunks)
  valid = np.arange(n_chunks * chunk) < len(entries)
  entries += [(0, 0, 0)] * (n_chunks * chunk - len(entries))
  starts = np.array(entries, np.int32).reshape(n_chunks, chunk, 3)
  valid = valid.reshape(n_chunks, chunk)

  out = jax.eval_shape(logits_fn, jax.ShapeDtypeStruct((chunk, wh, ww, channels), images.dtype))
  if out.shape[:3] != (chunk, wh, ww):
    raise ValueError(f"logits_fn must keep N, h, w: {(chunk, wh, ww, channels)} -> {out.shape}")
  dtype = jnp.promote_types(out.dtype, jnp.float32)
  num_classes = out.shape[-1]
  window_weights = jnp.asarray(weights, dtype)[:, :, None]

  def crop(start):
    return lax.dynamic_slice(images, (*start, 0), (1, wh, ww, channels))[0]

  def step(canvas, chunk_inputs):
    starts, valid = chunk_inputs
    logits = logits_fn(jax.vmap(crop)(starts)).astype(dtype)
    # `where`, not a zero weight: an invalid window's logits need not be finite.
    logits = jnp.where(valid[:, None, None, None], logits * window_weights, 0)
    for k in range(chunk):
      start = (*starts[k], 0)
      tile = lax.dynamic_slice(canvas, start, (1, wh, ww, num_classes))
      canvas = lax.dynamic_update_slice(canvas, tile + logits[k][None], start)
    return canvas, None

  canvas = jnp.zeros((b, hp, wp, num_classes), dtype)
  canvas, _ = lax.scan(step, canvas, (starts, valid))
  return (canvas / jnp.asarray(total, dtype)[:, :, None])[:, :h, :w]


def multi_scale_flip(
  logits_fn: LogitsFn,
  images: jax.Array,
  *,
  scales: Sequence[float] = (1.0,),
  flip: bool = False,
  infer: LogitsFn | None = None,
) -> jax.Array:
  """Multi-scale and horizontal-flip test-time augmentation (DeepLab, mmsegmentation aug_test).

  For each scale s the images are resized bilinearly to (round(H·s), round(W·s)) and run through
  `infer`; with `flip`, the horizontally flipped images too (in the same call, as a batch of 2B),
  and their logits flipped back. Logits are resized back to (H, W) bilinearly, and the softmax
  probabilities of all runs are averaged.

  Args:
    logits_fn: f32[N,h,w,3] -> f32[N,h,w,C].
    images: f32[B,H,W,3].
    scales: resize factors.
    flip: also run on the horizontally flipped images.
    infer: images -> logits at their size; default `logits_fn` (whole-image inference). E.g.
      `functools.partial(sliding_window, logits_fn, window_hw=..., stride_hw=...)`.

  Returns:
    f32[B,H,W,C]: log of the averaged probabilities, so its argmax and softmax are the averaged
    prediction. With scales (1.0,) and no flip, `infer(images)` itself.
  """
  scales = _check_scales(scales)
  infer = logits_fn if infer is None else infer
  if scales == (1.0,) and not flip:
    return infer(images)
  b, h, w, channels = images.shape
  log_probs = None
  for scale in scales:
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    x = images
    if size != (h, w):
      x = jax.image.resize(x, (b, *size, channels), "bilinear", antialias=False)
    if flip:
      x = jnp.concatenate([x, x[:, :, ::-1]])
    logits = infer(x)
    logits = logits.astype(jnp.promote_types(logits.dtype, jnp.float32))
    if flip:
      logits = jnp.concatenate([logits[:b], logits[b:, :, ::-1]])
    if size != (h, w):
      shape = (logits.shape[0], h, w, logits.shape[-1])
      logits = jax.image.resize(logits, shape, "bilinear", antialias=False)
    # log(sum of probabilities), accumulated in log space: no log(0) where a probability underflows.
    run = jax.nn.log_softmax(logits)
    if flip:
      run = jnp.logaddexp(run[:b], run[b:])
    log_probs = run if log_probs is None else jnp.logaddexp(log_probs, run)
  return log_probs - math.log(len(scales) * (2 if flip else 1))


def make_inference(
  logits_fn: LogitsFn,
  *,
  mode: str = "whole",
  window_hw: tuple[int, int] | None = None,
  stride_hw: tuple[int, int] | None = None,
  blend: str = "gaussian",
  batch_windows: int = 8,
  scales: Sequence[float] = (1.0,),
  flip: bool = False,
) -> LogitsFn:
  """The inference function `images: f32[B,H,W,3] -> logits: f32[B,H,W,C]` of a configuration.

  Args:
    logits_fn: f32[N,h,w,3] -> f32[N,h,w,C].
    mode: "whole" (one `logits_fn` call on the whole images) or "slide" (`sliding_window`).
    window_hw, stride_hw, blend, batch_windows: of `sliding_window`; the first two required by
      "slide", all ignored by "whole".
    scales, flip: of `multi_scale_flip`, which wraps the mode unless scales == (1.0,) and not flip.
  """
  _check_choice("mode", mode, MODES)
  _check_choice("blend", blend, BLENDS)
  scales = _check_scales(scales)
  infer = logits_fn
  if mode == "slide":
    window_hw, stride_hw = _check_window(window_hw, stride_hw)
    if batch_windows < 1:
      raise ValueError(f"batch_windows must be positive, got {batch_windows}")
    infer = functools.partial(
      sliding_window,
      logits_fn,
      window_hw=window_hw,
      stride_hw=stride_hw,
      blend=blend,
      batch_windows=batch_windows,
    )
  if scales == (1.0,) and not flip:
    return infer
  return functools.partial(multi_scale_flip, logits_fn, scales=scales, flip=flip, infer=infer)

"""Click-based interactive segmentation: the simulated user, IoU per click, NoC, NoF and mIoU@k.

The protocol of RITM (Sofiiuk, Petrov & Konushin, "Reviving Iterative Training with Mask Guidance
for Interactive Segmentation", ICIP 2022; `isegm/inference/clicker.py::Clicker._get_next_click`,
`isegm/inference/utils.py::get_iou, compute_noc_metric`, `evaluation.py::evaluate_sample`), which
SAM's interactive evaluation also follows.

Next click: with false negatives FN = gt & ~pred and false positives FP = ~gt & pred (ignored
pixels are neither), take the exact Euclidean distance transform (EDT) of each, i.e. every error
pixel's distance to the nearest pixel outside that error map, with the outside of the image
counted as such (RITM pads both maps with one False pixel). Already-clicked pixels get distance 0.
The click is positive iff max FN distance > max FP distance (a tie is negative) and lands on the
row-major first pixel of the chosen map at its maximum distance (RITM's `np.argwhere(dt == max)[0]`;
`cv2.distanceTransform(..., cv2.DIST_L2, 0)` there is exact, as `scipy`'s EDT here and the
integer squared EDT of the JAX version are, so the ties are the same).

Sentinel: when no pixel is left to click (no error outside the ignore region, except possibly on
already-clicked pixels), the simulators return `(-1, -1)` and a negative click. RITM would click
pixel (0, 0) as a negative there; `click_ious` instead stops clicking and keeps the current IoU.
"""

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy import ndimage

Click = tuple[int, int, bool]
NO_CLICK = (-1, -1, False)


def _bool(mask: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
  mask = np.asarray(mask, bool)
  if mask.shape != shape:
    raise ValueError(f"{name} has shape {mask.shape}, expected {shape}")
  return mask


def mask_iou(pred: Any, gt: Any, ignore: Any = None) -> float:
  """IoU of two masks over the pixels outside `ignore`; 1.0 when the union is empty.

  Args:
    pred, gt: bool[H,W] masks (numpy or jax).
    ignore: bool[H,W] pixels left out of both intersection and union, or None.
  """
  gt = np.asarray(gt, bool)
  pred = _bool(pred, gt.shape, "pred")
  keep = True if ignore is None else ~_bool(ignore, gt.shape, "ignore")
  union = np.sum((pred | gt) & keep)
  return float(np.sum(pred & gt & keep) / union) if union else 1.0


def _host_edt(mask: np.ndarray, padding: bool) -> np.ndarray:
  """f64[H,W] EDT of `mask: bool[H,W]`; +inf everywhere when nothing is False (and no padding)."""
  if padding:
    return ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
  if mask.all():
    return np.full(mask.shape, np.inf)
  return ndimage.distance_transform_edt(mask)


def next_click(
  pred: Any, gt: Any, *, ignore: Any = None, clicked: Any = None, padding: bool = True
) -> Click:
  """The simulated user's next click (RITM's rule, see the module docstring). Host-side numpy.

  Args:
    pred: bool[H,W] current prediction.
    gt: bool[H,W] ground-truth object.
    ignore: bool[H,W] pixels that are never errors, or None.
    clicked: bool[H,W] pixels clicked before, which are not clicked again, or None.
    padding: count the outside of the image as non-error (RITM's default); without it, an error
      map with no non-error pixel has distance +inf everywhere.

  Returns:
    `(y, x, is_positive)` as Python ints and bool; `NO_CLICK = (-1, -1, False)` when there is
    nothing left to click.
  """
  gt = np.asarray(gt, bool)
  pred = _bool(pred, gt.shape, "pred")
  keep = True if ignore is None else ~_bool(ignore, gt.shape, "ignore")
  dts = [_host_edt(error & keep, padding) for error in (gt & ~pred, ~gt & pred)]
  if clicked is not None:
    dts = [np.where(_bool(clicked, gt.shape, "clicked"), 0.0, dt) for dt in dts]
  fn_max, fp_max = (dt.max(initial=0.0) for dt in dts)
  if fn_max == fp_max == 0:
    return NO_CLICK
  is_positive = bool(fn_max > fp_max)
  dt = dts[0] if is_positive else dts[1]
  # np.argmax returns the first maximum in row-major order.
  y, x = np.unravel_index(np.argmax(dt), dt.shape)
  return int(y), int(x), is_positive


def _squared_edt(mask: jax.Array, padding: bool) -> jax.Array:
  """i32[...,H,W] squared EDT of `mask: bool[...,H,W]`; `far` where nothing is False (unpadded).

  Felzenszwalb & Huttenlocher's separable transform, "Distance Transforms of Sampled Functions",
  ToC 2012: along columns, g[i,j] = min_k (i-k)² over False pixels (k,j); then along rows,
  d[i,j] = min_l (j-l)² + g[i,l]. Each minimum is taken densely over all positions, so the cost is
  O(H·W·(H+W)) with static shapes, and integers keep the result and its ties exact.
  """
  if padding:
    widths = [(0, 0)] * (mask.ndim - 2) + [(1, 1), (1, 1)]
    return _squared_edt(jnp.pad(mask, widths), False)[..., 1:-1, 1:-1]
  h, w = mask.shape[-2:]
  # Larger than any true squared distance, and far + w² stays well inside int32.
  far = (h + w) ** 2
  rows, cols = jnp.arange(h), jnp.arange(w)
  row_d2 = (rows[:, None] - rows[None, :]) ** 2  # [i, k]
  col_d2 = (cols[:, None] - cols[None, :]) ** 2  # [j, l]
  f = jnp.where(mask, far, 0)
  g = jnp.minimum(jnp.min(row_d2[:, :, None] + f[..., None, :, :], axis=-2), far)
  return jnp.minimum(jnp.min(col_d2 + g[..., :, None, :], axis=-1), far)


@functools.partial(jax.jit, static_argnames=("padding",))
def distance_transform_edt(mask: jax.Array, *, padding: bool = False) -> jax.Array:
  """Exact Euclidean distance of each True pixel to the nearest False pixel; jit-able.

  Equals `scipy.ndimage.distance_transform_edt` per image when the image has a False pixel;
  +inf everywhere when it has none. O(H·W·(H+W)) per image, meant for sizes up to about 512².

  Args:
    mask: bool[...,H,W].
    padding: count the outside of the image as False (a 1-pixel False border, RITM's convention).

  Returns:
    f32[...,H,W].
  """
  mask = jnp.asarray(mask, bool)
  d = jnp.sqrt(_squared_edt(mask, padding).astype(jnp.float32))
  if padding:
    return d
  return jnp.where(mask.all(axis=(-2, -1), keepdims=True), jnp.inf, d)


@functools.partial(jax.jit, static_argnames=("padding",))
def next_clicks(
  pred: jax.Array,
  gt: jax.Array,
  valid: jax.Array | None = None,
  clicked: jax.Array | None = None,
  *,
  padding: bool = True,
) -> tuple[jax.Array, jax.Array]:
  """`next_click` for a batch, in JAX with static shapes; the same clicks, ties included.

  Args:
    pred: bool[B,H,W] current predictions.
    gt: bool[B,H,W] ground-truth objects.
    valid: bool[B,H,W] pixels that may be errors (the complement of `ignore`), or None for all.
    clicked: bool[B,H,W] pixels clicked before, or None.
    padding: as in `next_click`.

  Returns:
    `yx: i32[B,2]` (row, column), `(-1, -1)` where there is nothing left to click, and
    `positive: bool[B]` (False at the sentinel).
  """
  pred, gt = jnp.asarray(pred, bool), jnp.asarray(gt, bool)
  fn, fp = gt & ~pred, ~gt & pred
  if valid is not None:
    valid = jnp.asarray(valid, bool)
    fn, fp = fn & valid, fp & valid
  d2 = _squared_edt(jnp.stack([fn, fp]), padding)  # [2,B,H,W]
  if clicked is not None:
    d2 = jnp.where(jnp.asarray(clicked, bool), 0, d2)
  d2 = d2.reshape(*d2.shape[:2], -1)
  best = d2.max(axis=-1)  # [2,B]
  positive = best[0] > best[1]
  # jnp.argmax returns the first maximum, i.e. the row-major first pixel.
  index = jnp.argmax(jnp.where(positive[:, None], d2[0], d2[1]), axis=-1)
  yx = jnp.stack(jnp.divmod(index, gt.shape[-1]), axis=-1).astype(jnp.int32)
  return jnp.where((best.max(axis=0) == 0)[:, None], -1, yx), positive


def click_ious(
  predict_fn: Callable[[list[Click]], Any],
  gt: Any,
  *,
  max_clicks: int = 20,
  ignore: Any = None,
  stop_at: float | None = None,
) -> np.ndarray:
  """IoU after each simulated click, RITM's `evaluate_sample` loop. Host-side.

  Starting from an empty prediction, each step asks `next_click` (never re-clicking a pixel), calls
  `predict_fn` with all clicks so far and records `mask_iou` of its answer. Once the IoU reaches
  `stop_at`, or there is nothing left to click (`NO_CLICK`; 1.0 when the prediction is right outside
  `ignore`), clicking stops and the remaining entries repeat the current IoU.

  Args:
    predict_fn: maps the clicks `[(y, x, is_positive), ...]` to a bool[H,W] prediction.
    gt: bool[H,W] ground-truth object.
    max_clicks: number of clicks (entries).
    ignore: bool[H,W] pixels that are never errors and do not count in the IoU, or None.
    stop_at: IoU at which to stop clicking, or None to always click `max_clicks` times.

  Returns:
    f64[max_clicks]; entry k is the IoU after k + 1 clicks.
  """
  gt = np.asarray(gt, bool)
  pred, clicked = np.zeros_like(gt), np.zeros_like(gt)
  clicks: list[Click] = []
  ious = np.empty(max_clicks)
  for k in range(max_clicks):
    click = next_click(pred, gt, ignore=ignore, clicked=clicked)
    if click == NO_CLICK:
      ious[k:] = mask_iou(pred, gt, ignore)
      break
    clicks.append(click)
    clicked[click[:2]] = True
    pred = _bool(predict_fn(list(clicks)), gt.shape, "predict_fn's mask")
    ious[k] = mask_iou(pred, gt, ignore)
    if stop_at is not None and ious[k] >= stop_at:
      ious[k:] = ious[k]
      break
  return ious


def _curves(ious: Any, max_clicks: int) -> np.ndarray:
  ious = np.asarray(ious, np.float64)
  if ious.ndim != 2:
    raise ValueError(f"ious must be [N, clicks], got shape {ious.shape}")
  return ious[:, :max_clicks]


def noc(ious: Any, threshold: float, *, max_clicks: int = 20) -> np.ndarray:
  """Number of clicks to reach IoU ≥ `threshold` (1-based), `max_clicks` if never.

  RITM's `compute_noc_metric`. Only the first `max_clicks` entries count.

  Args:
    ious: f[N,K] IoU after each click, one row per object.
    threshold: IoU to reach; reaching it exactly counts.
    max_clicks: click budget.

  Returns:
    f64[N].
  """
  reached = _curves(ious, max_clicks) >= threshold
  return np.where(reached.any(axis=1), np.argmax(reached, axis=1) + 1, max_clicks).astype(float)


def interactive_scores(ious: Any, *, max_clicks: int = 20) -> dict[str, float | int]:
  """The standard interactive-segmentation table from IoU curves. Host-side numpy.

  - `noc@85`, `noc@90`: mean `noc` at IoU 0.85 / 0.90.
  - `nof@85`, `nof@90`: number of objects that never reach that IoU within `max_clicks` (the
    papers' NoF; RITM's code counts NoC == max_clicks, which also counts an object that first
    reaches it at the last click).
  - `miou@1`, `miou@3`, `miou@5`: mean IoU after 1, 3, 5 clicks.

  Args:
    ious: f[N,K] IoU after each click, one row per object, K ≥ 5.
    max_clicks: click budget.
  """
  curves = _curves(ious, max_clicks)
  if curves.shape[1] < 5:
    raise ValueError(f"need the IoUs of at least 5 clicks, got {curves.shape[1]}")
  scores: dict[str, float | int] = {}
  for t in (85, 90):
    scores[f"noc@{t}"] = float(noc(curves, t / 100, max_clicks=max_clicks).mean())
    scores[f"nof@{t}"] = int(np.sum(~(curves >= t / 100).any(axis=1)))
  for k in (1, 3, 5):
    scores[f"miou@{k}"] = float(curves[:, k - 1].mean())
  return scores

"""Pixel-wise and region losses for semantic segmentation.

Every loss maps `logits: f32[B,H,W,C]` (bfloat16 is accepted and promoted to float32) and
`labels: i32[B,H,W]` to a float32 scalar. Pixels labelled `ignore_index` are void: they add nothing
to the value, their logits get exactly zero gradient, and a batch with no valid pixel gives exactly
0.0. No loss branches in Python on array values, so all of them work under `jit`, `vmap` and `grad`.
"""

import functools
from typing import Literal

import jax
import jax.numpy as jnp

# Smallest normal float32: the floor of a base raised to a power below 1, so that its derivative
# (at most 1 / tiny ~ 8.5e37) stays finite where the base reaches 0.
_TINY = float(jnp.finfo(jnp.float32).tiny)
CLASS_MODES = ("all", "present")


def _safe_div(num: jax.Array, den: jax.Array) -> jax.Array:
  """`num / den` where `den > 0`, else 0, with zero (not NaN) gradient in the second case."""
  positive = den > 0
  return jnp.where(positive, num / jnp.where(positive, den, 1.0), 0.0)


def _prepare(
  logits: jax.Array, labels: jax.Array, ignore_index: int
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Float32 logits, the valid mask `bool[B,H,W]` and a one-hot `f32[B,H,W,C]` zero on void.

  The one-hot is masked explicitly: `one_hot(255, C)` happens to be zero, but an `ignore_index`
  inside `[0, C)` would not be.
  """
  logits = jnp.asarray(logits).astype(jnp.float32)
  labels = jnp.asarray(labels)
  valid = labels != ignore_index
  onehot = jax.nn.one_hot(labels, logits.shape[-1], dtype=jnp.float32)
  return logits, valid, jnp.where(valid[..., None], onehot, 0.0)


def _check_classes(classes: str) -> None:
  if classes not in CLASS_MODES:
    raise ValueError(f"classes must be one of {CLASS_MODES}, got {classes!r}")


def _group_mean(per_group: jax.Array, counts: jax.Array) -> jax.Array:
  """Mean of per-group losses over the groups with at least one valid pixel (0 if none)."""
  has_valid = (counts > 0).astype(jnp.float32)
  return _safe_div(jnp.sum(per_group * has_valid), jnp.sum(has_valid))


def _class_mean(per_class: jax.Array, mask: jax.Array) -> jax.Array:
  """Mean over the last (class) axis restricted to `mask`; 0 where the mask is empty."""
  mask = mask.astype(jnp.float32)
  return _safe_div(jnp.sum(per_class * mask, axis=-1), jnp.sum(mask, axis=-1))


def _soft_counts(
  logits: jax.Array, labels: jax.Array, ignore_index: int, axes: tuple[int, ...]
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
  """Soft TP, sum P, sum G and the valid-pixel count, summed over `axes` of the valid pixels."""
  logits, valid, onehot = _prepare(logits, labels, ignore_index)
  probs = jnp.where(valid[..., None], jax.nn.softmax(logits, axis=-1), 0.0)
  return (
    jnp.sum(probs * onehot, axis=axes),
    jnp.sum(probs, axis=axes),
    jnp.sum(onehot, axis=axes),
    jnp.sum(valid, axis=axes),
  )


def cross_entropy(
  logits: jax.Array,
  labels: jax.Array,
  *,
  ignore_index: int = 255,
  class_weights: jax.Array | None = None,
  label_smoothing: float = 0.0,
) -> jax.Array:
  r"""Class-weighted softmax cross-entropy with optional label smoothing.

  $$L = \frac{\sum_p w_{y_p} \ell_p}{\sum_p w_{y_p}}, \qquad
  \ell_p = -\sum_c t_{pc} \log \operatorname{softmax}(z_p)_c, \qquad
  t_p = (1 - \varepsilon)\,\mathrm{onehot}(y_p) + \varepsilon / C,$$

  sums over valid pixels. Normalising by the weight sum (PyTorch's `reduction="mean"`) keeps the
  scale independent of the class mix of the batch. A smoothed pixel keeps the weight of its true
  class (PyTorch instead weighs the smoothing term of class `c` by `w_c`).

  Reference: Szegedy et al., "Rethinking the Inception Architecture for Computer Vision", CVPR
  2016 (label smoothing).

  Args:
    logits: f32[B,H,W,C] (or bf16) unnormalised scores.
    labels: i32[B,H,W] class indices; `ignore_index` marks void pixels.
    ignore_index: label of void pixels.
    class_weights: f32[C] per-class weights `w`, or None for all ones.
    label_smoothing: `ε` in [0, 1].

  Returns:
    f32[] loss; 0 when no pixel is valid.
  """
  logits, valid, onehot = _prepare(logits, labels, ignore_index)
  num_classes = logits.shape[-1]
  targets = (1.0 - label_smoothing) * onehot + label_smoothing / num_classes
  nll = -jnp.sum(targets * jax.nn.log_softmax(logits, axis=-1), axis=-1)
  weights = jnp.where(valid, 1.0, 0.0)
  if class_weights is not None:
    weights = jnp.sum(onehot * jnp.asarray(class_weights, jnp.float32), axis=-1)
  return _safe_div(jnp.sum(jnp.where(valid, weights * nll, 0.0)), jnp.sum(weights))


def dice_loss(
  logits: jax.Array,
  labels: jax.Array,
  *,
  ignore_index: int = 255,
  smooth: float = 1.0,
  per_image: bool = False,
  classes: Literal["all", "present"] = "all",
) -> jax.Array:
  r"""Soft multi-class Dice loss on softmax probabilities.

  $$L = 1 - \frac{1}{|K|} \sum_{c \in K}
  \frac{2 \sum_p P_{pc} G_{pc} + s}{\sum_p P_{pc} + \sum_p G_{pc} + s},$$

  `P` the softmax probabilities, `G` the one-hot labels, sums over the valid pixels of the batch
  (or of each image, then averaged over the images that have a valid pixel, if `per_image`).
  Denominators are plain sums (Sudre et al. 2017), not the squares of Milletari et al. `K` is
  every class (`"all"`) or the classes present in the ground truth of the batch / image
  (`"present"`; 0 if there are none). `"present"` divides by the number of present classes;
  segmentation_models_pytorch instead zeroes absent classes but still divides by `C`.

  Reference: Milletari, Navab and Ahmadi, "V-Net", 3DV 2016; Sudre et al., "Generalised Dice
  overlap as a deep learning loss function for highly unbalanced segmentations", DLMIA 2017.

  Args:
    logits: f32[B,H,W,C] (or bf16) unnormalised scores.
    labels: i32[B,H,W] class indices; `ignore_index` marks void pixels.
    ignore_index: label of void pixels.
    smooth: `s`, added to numerator and denominator.
    per_image: sum over each image and average the per-image losses instead of pooling the batch.
    classes: `"all"` or `"present"`.

  Returns:
    f32[] loss; 0 when no pixel is valid.
  """
  _check_classes(classes)
  axes = (1, 2) if per_image else (0, 1, 2)
  tp, sum_p, sum_g, count = _soft_counts(logits, labels, ignore_index, axes)
  dice = _safe_div(2.0 * tp + smooth, sum_p + sum_g + smooth)
  keep = sum_g > 0 if classes == "present" else jnp.ones_like(sum_g, bool)
  return _group_mean(_class_mean(1.0 - dice, keep), count)


def focal_loss(
  logits: jax.Array,
  labels: jax.Array,
  *,
  gamma: float = 2.0,
  alpha: float | jax.Array | None = None,
  ignore_index: int = 255,
) -> jax.Array:
  r"""Multi-class focal loss.

  $$L = \frac{1}{N} \sum_p -\alpha_{y_p} (1 - p_{y_p})^\gamma \log p_{y_p},$$

  `p = softmax(z)`, `N` the number of valid pixels. A scalar `alpha` scales every class alike
  (the binary form's `1 - α` for negatives has no multi-class analogue); the normaliser is the
  pixel count, not the α sum. `γ = 0` gives cross-entropy.

  Reference: Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017.

  Args:
    logits: f32[B,H,W,C] (or bf16) unnormalised scores.
    labels: i32[B,H,W] class indices; `ignore_index` marks void pixels.
    gamma: focusing exponent `γ ≥ 0` (may be fractional).
    alpha: None (1), a scalar, or f32[C] per-class weights.
    ignore_index: label of void pixels.

  Returns:
    f32[] loss; 0 when no pixel is valid.
  """
  logits, valid, onehot = _prepare(logits, labels, ignore_index)
  log_p = jnp.sum(onehot * jax.nn.log_softmax(logits, axis=-1), axis=-1)
  # 1 - p as -expm1(log p) keeps precision near p = 1; the floor keeps d/dx x^γ finite at x = 0
  # for γ < 1, and gives 0^0 = 1 for γ = 0.
  modulating = jnp.maximum(-jnp.expm1(log_p), _TINY) ** gamma
  per_pixel = -modulating * log_p
  if alpha is not None:
    alpha = jnp.broadcast_to(jnp.asarray(alpha, jnp.float32), logits.shape[-1:])
    per_pixel = per_pixel * jnp.sum(onehot * alpha, axis=-1)
  return _safe_div(jnp.sum(jnp.where(valid, per_pixel, 0.0)), jnp.sum(valid))


def _tversky_index(
  logits: jax.Array,
  labels: jax.Array,
  *,
  alpha: float,
  beta: float,
  smooth: float,
  ignore_index: int,
) -> tuple[jax.Array, jax.Array]:
  """Per-class Tversky index f32[C] over the batch, and the valid-pixel count."""
  tp, sum_p, sum_g, count = _soft_counts(logits, labels, ignore_index, (0, 1, 2))
  fp, fn = sum_p - tp, sum_g - tp
  return _safe_div(tp + smooth, tp + alpha * fp + beta * fn + smooth), count


def tversky_loss(
  logits: jax.Array,
  labels: jax.Array,
  *,
  alpha: float = 0.5,
  beta: float = 0.5,
  smooth: float = 1.0,
  ignore_index: int = 255,
) -> jax.Array:
  r"""Soft multi-class Tversky loss.

  $$L = 1 - \frac{1}{C} \sum_c \frac{TP_c + s}{TP_c + \alpha FP_c + \beta FN_c + s},$$

  $TP_c = \sum_p P_{pc} G_{pc}$, $FP_c = \sum_p P_{pc} (1 - G_{pc})$,
  $FN_c = \sum_p (1 - P_{pc}) G_{pc}$ over the valid pixels of the batch. `α` weighs false
  positives, `β` false negatives. With `α = β = 1/2` this is `dice_loss` with smoothing `2s`
  (multiply numerator and denominator by 2), so equal to it with the same `s` only when `s = 0`.

  Reference: Salehi, Erdogmus and Gholipour, "Tversky loss function for image segmentation using
  3D fully convolutional deep networks", MLMI 2017.

  Args:
    logits: f32[B,H,W,C] (or bf16) unnormalised scores.
    labels: i32[B,H,W] class indices; `ignore_index` marks void pixels.
    alpha: weight of false positives.
    beta: weight of false negatives.
    smooth: `s`, added to numerator and denominator.
    ignore_index: label of void pixels.

  Returns:
    f32[] loss; 0 when no pixel is valid.
  """
  index, count = _tversky_index(
    logits, labels, alpha=alpha, beta=beta, smooth=smooth, ignore_index=ignore_index
  )
  return _group_mean(jnp.mean(1.0 - index), count)


def focal_tversky_loss(
  logits: jax.Array,
  labels: jax.Array,
  *,
  alpha: float = 0.5,
  beta: float = 0.5,
  gamma: float = 0.75,
  smooth: float = 1.0,
  ignore_index: int = 255,
) -> jax.Array:
  r"""Focal Tversky loss.

  $$L = \frac{1}{C} \sum_c (1 - TI_c)^\gamma,$$

  `TI_c` the Tversky index of `tversky_loss`. Exponent convention: `gamma` here is the exponent
  itself. The paper writes $(1 - TI_c)^{1/\gamma}$ with $\gamma \in [1, 3]$ and recommends
  $\gamma = 4/3$, i.e. `gamma=0.75` here; `gamma < 1` focuses on the harder (low-TI) classes.
  The paper sums over classes; the mean keeps the scale independent of `C`.

  Reference: Abraham and Khan, "A Novel Focal Tversky Loss Function with Improved Attention U-Net
  for Lesion Segmentation", ISBI 2019.

  Args:
    logits: f32[B,H,W,C] (or bf16) unnormalised scores.
    labels: i32[B,H,W] class indices; `ignore_index` marks void pixels.
    alpha: weight of false positives.
    beta: weight of false negatives.
    gamma: exponent applied to `1 - TI_c`.
    smooth: `s`, added to numerator and denominator.
    ignore_index: label of void pixels.

  Returns:
    f32[] loss; 0 when no pixel is valid.
  """
  index, count = _tversky_index(
    logits, labels, alpha=alpha, beta=beta, smooth=smooth, ignore_index=ignore_index
  )
  # The floor keeps d/dx x^γ finite at a perfect index (x = 0) when γ < 1.
  return _group_mean(jnp.mean(jnp.maximum(1.0 - index, _TINY) ** gamma), count)


def _lovasz_flat(probs: jax.Array, fg: jax.Array, valid: jax.Array, *, present: bool) -> jax.Array:
  """Lovász-Softmax of one flattened group: probs f32[N,C], fg i32[N,C], valid bool[N]."""
  errors = jnp.where(valid[:, None], jnp.abs(fg - probs), 0.0)
  # Void pixels get the key -1 (< every error in [0, 1]), so they sort after all valid pixels and
  # the prefix sums over the first n_valid positions equal the reference's on valid pixels only;
  # their error 0 makes their Lovász gradient irrelevant.
  order = jnp.argsort(jnp.where(valid[:, None], errors, -1.0), axis=0, descending=True)
  errors_sorted = jnp.take_along_axis(errors, order, axis=0)
  fg_sorted = jnp.take_along_axis(fg, order, axis=0)
  # Integer prefix sums stay exact past 2^24 pixels.
  gts = jnp.sum(fg_sorted, axis=0)
  intersection = gts - jnp.cumsum(fg_sorted, axis=0)
  union = gts + jnp.cumsum(1 - fg_sorted, axis=0)  # >= 1 everywhere
  jaccard = 1.0 - intersection / union
  lovasz_grad = jnp.concatenate([jaccard[:1], jaccard[1:] - jaccard[:-1]], axis=0)
  per_class = jnp.sum(errors_sorted * lovasz_grad, axis=0)
  keep = gts > 0 if present else jnp.ones_like(gts, bool)
  return _class_mean(per_class, keep)


def lovasz_softmax(
  logits: jax.Array,
  labels: jax.Array,
  *,
  ignore_index: int = 255,
  classes: Literal["all", "present"] = "present",
  per_image: bool = False,
) -> jax.Array:
  r"""Lovász-Softmax loss, a convex surrogate of the per-class Jaccard loss.

  For each class `c`, with errors $e_p = |G_{pc} - P_{pc}|$ sorted in decreasing order
  $e_{\pi_1} \ge e_{\pi_2} \ge \dots$,

  $$L_c = \sum_i e_{\pi_i} \bigl(J_c(\pi_{1..i}) - J_c(\pi_{1..i-1})\bigr), \qquad
  J_c(S) = 1 - \frac{|G_c \setminus S|}{|G_c \cup S|},$$

  the Lovász extension of the Jaccard loss. `L` is the mean of `L_c` over every class (`"all"`)
  or over the classes present in the ground truth (`"present"`; 0 if none), on the valid pixels
  of the batch flattened together, or of each image with the per-image losses averaged over the
  images that have a valid pixel (`per_image`). Matches the reference `lovasz_softmax_flat`.
  Void pixels are sorted last with error 0 rather than removed, so shapes stay static under
  `jit`; the sort is over all `B·H·W` pixels for every class.

  Reference: Berman, Rannen Triki and Blaschko, "The Lovász-Softmax loss: A tractable surrogate
  for the optimization of the intersection-over-union measure in neural networks", CVPR 2018;
  github.com/bermanmaxim/LovaszSoftmax.

  Args:
    logits: f32[B,H,W,C] (or bf16) unnormalised scores.
    labels: i32[B,H,W] class indices; `ignore_index` marks void pixels.
    ignore_index: label of void pixels.
    classes: `"all"` or `"present"`.
    per_image: compute the loss per image and average, instead of over the flattened batch.

  Returns:
    f32[] loss; 0 when no pixel is valid.
  """
  _check_classes(classes)
  logits, valid, onehot = _prepare(logits, labels, ignore_index)
  num_classes = logits.shape[-1]
  groups = logits.shape[0] if per_image else 1
  probs = jax.nn.softmax(logits, axis=-1).reshape(groups, -1, num_classes)
  fg = onehot.astype(jnp.int32).reshape(groups, -1, num_classes)
  valid = valid.reshape(groups, -1)
  per_group = jax.vmap(functools.partial(_lovasz_flat, present=classes == "present"))(
    probs, fg, valid
  )
  return _group_mean(per_group, jnp.sum(valid, axis=1))

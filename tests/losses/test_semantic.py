"""segjax.losses.semantic against float64 NumPy references and hand-worked cases."""

import functools
import math

import jax
import numpy as np
import pytest

from segjax.losses import semantic

IGNORE = 255
RTOL, ATOL = 1e-5, 1e-6


def _batch(seed=0, shape=(2, 8, 8, 4), ignore_frac=0.2, scale=2.0):
  rng = np.random.default_rng(seed)
  logits = (scale * rng.standard_normal(shape)).astype(np.float32)
  labels = rng.integers(0, shape[-1], shape[:-1]).astype(np.int32)
  labels[rng.random(shape[:-1]) < ignore_frac] = IGNORE
  return logits, labels


# ----------------------------------------------------------------------------- NumPy references


def _log_softmax(z):
  z = np.asarray(z, np.float64)
  z = z - z.max(-1, keepdims=True)
  return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _valid_pixels(logits, labels):
  """Valid pixels only, flattened: (f64[N,C] logits, int[N] labels)."""
  keep = labels != IGNORE
  return np.asarray(logits, np.float64)[keep], labels[keep]


def ref_cross_entropy(logits, labels, class_weights=None, label_smoothing=0.0):
  z, y = _valid_pixels(logits, labels)
  num_classes = z.shape[-1]
  target = (1 - label_smoothing) * np.eye(num_classes)[y] + label_smoothing / num_classes
  per_pixel = -(target * _log_softmax(z)).sum(-1)
  w = np.ones(num_classes) if class_weights is None else np.asarray(class_weights, np.float64)
  return (w[y] * per_pixel).sum() / w[y].sum()


def ref_dice(logits, labels, smooth=1.0, per_image=False, classes="all"):
  groups = [(logits[i], labels[i]) for i in range(len(labels))] if per_image else [(logits, labels)]
  losses = []
  for z, y in groups:
    z, y = _valid_pixels(z, y)
    if len(y) == 0:
      continue
    p = np.exp(_log_softmax(z))
    per_class = []
    for c in range(z.shape[-1]):
      g = (y == c).astype(np.float64)
      if classes == "present" and g.sum() == 0:
        continue
      per_class.append(1 - (2 * (p[:, c] * g).sum() + smooth) / (p[:, c].sum() + g.sum() + smooth))
    losses.append(np.mean(per_class))
  return np.mean(losses) if losses else 0.0


def ref_focal(logits, labels, gamma=2.0, alpha=None):
  z, y = _valid_pixels(logits, labels)
  p = np.exp(_log_softmax(z))[np.arange(len(y)), y]
  a = np.ones(z.shape[-1]) if alpha is None else np.broadcast_to(alpha, z.shape[-1:])
  return np.mean(-a[y] * (1 - p) ** gamma * np.log(p))


def ref_tversky_index(logits, labels, alpha, beta, smooth):
  z, y = _valid_pixels(logits, labels)
  p = np.exp(_log_softmax(z))
  g = np.eye(z.shape[-1])[y]
  tp, fp, fn = (p * g).sum(0), (p * (1 - g)).sum(0), ((1 - p) * g).sum(0)
  return (tp + smooth) / (tp + alpha * fp + beta * fn + smooth)


def ref_tversky(logits, labels, alpha=0.5, beta=0.5, smooth=1.0):
  return np.mean(1 - ref_tversky_index(logits, labels, alpha, beta, smooth))


def ref_focal_tversky(logits, labels, alpha=0.5, beta=0.5, gamma=0.75, smooth=1.0):
  return np.mean((1 - ref_tversky_index(logits, labels, alpha, beta, smooth)) ** gamma)


# Port of bermanmaxim/LovaszSoftmax (pytorch/lovasz_losses.py) to NumPy, on valid pixels only.
def _lovasz_grad(gt_sorted):
  p = len(gt_sorted)
  gts = gt_sorted.sum()
  intersection = gts - gt_sorted.cumsum(0)
  union = gts + (1 - gt_sorted).cumsum(0)
  jaccard = 1.0 - intersection / union
  if p > 1:  # cover 1-pixel case
    jaccard[1:p] = jaccard[1:p] - jaccard[0:-1]
  return jaccard


def _lovasz_softmax_flat(probas, labels, classes="present"):
  if probas.size == 0:
    return 0.0
  losses = []
  for c in range(probas.shape[1]):
    fg = (labels == c).astype(np.float64)
    if classes == "present" and fg.sum() == 0:
      continue
    errors = np.abs(fg - probas[:, c])
    perm = np.argsort(-errors, kind="stable")
    losses.append(np.dot(errors[perm], _lovasz_grad(fg[perm])))
  return np.mean(losses) if losses else 0.0


def ref_lovasz(logits, labels, classes="present", per_image=False):
  groups = [(logits[i], labels[i]) for i in range(len(labels))] if per_image else [(logits, labels)]
  losses = []
  for z, y in groups:
    z, y = _valid_pixels(z, y)
    if len(y):  # images without a valid pixel are skipped (see the docstring)
      losses.append(_lovasz_softmax_flat(np.exp(_log_softmax(z)), y, classes))
  return np.mean(losses) if losses else 0.0


# ------------------------------------------------------------------------ against the references
# name: (loss, options, reference). All are evaluated in one compiled function (one compile for
# every input set below, instead of one per case).
CASES = {
  "ce": (semantic.cross_entropy, {}, ref_cross_entropy),
  "ce_weighted": (
    semantic.cross_entropy,
    {"class_weights": (0.5, 1.0, 2.0, 4.0, 1.5, 0.2)},
    ref_cross_entropy,
  ),
  "ce_smoothed": (semantic.cross_entropy, {"label_smoothing": 0.1}, ref_cross_entropy),
  "ce_weighted_smoothed": (
    semantic.cross_entropy,
    {"class_weights": (3.0, 1.0, 0.2, 1.5, 1.0, 1.0), "label_smoothing": 0.2},
    ref_cross_entropy,
  ),
  **{
    f"dice_{classes}_{'image' if per_image else 'batch'}_s{smooth:g}": (
      semantic.dice_loss,
      {"per_image": per_image, "classes": classes, "smooth": smooth},
      ref_dice,
    )
    for per_image in (False, True)
    for classes in ("all", "present")
    for smooth in (0.0, 1.0)
  },
  "dice_all_batch_s2": (semantic.dice_loss, {"smooth": 2.0}, ref_dice),
  "focal": (semantic.focal_loss, {}, ref_focal),
  "focal_gamma0": (semantic.focal_loss, {"gamma": 0.0}, ref_focal),
  "focal_scalar_alpha": (semantic.focal_loss, {"gamma": 0.5, "alpha": 0.25}, ref_focal),
  "focal_vector_alpha": (
    semantic.focal_loss,
    {"gamma": 1.5, "alpha": (1.0, 2.0, 0.5, 0.1, 1.0, 3.0)},
    ref_focal,
  ),
  "tversky_half": (semantic.tversky_loss, {}, ref_tversky),
  "tversky_half_s0": (semantic.tversky_loss, {"smooth": 0.0}, ref_tversky),
  "tversky_fp": (semantic.tversky_loss, {"alpha": 0.7, "beta": 0.3}, ref_tversky),
  "tversky_fn_s0": (
    semantic.tversky_loss,
    {"alpha": 0.3, "beta": 0.7, "smooth": 0.0},
    ref_tversky,
  ),
  **{
    f"focal_tversky_g{gamma:g}": (
      semantic.focal_tversky_loss,
      {"alpha": 0.7, "beta": 0.3, "gamma": gamma},
      ref_focal_tversky,
    )
    for gamma in (0.75, 1.0, 2.0)
  },
  **{
    f"lovasz_{classes}_{'image' if per_image else 'batch'}": (
      semantic.lovasz_softmax,
      {"per_image": per_image, "classes": classes},
      ref_lovasz,
    )
    for per_image in (False, True)
    for classes in ("present", "all")
  },
}


INPUTS = {"seed0": (0, 2.0), "seed1": (1, 2.0), "saturated": (2, 60.0), "image1_void": (3, 2.0)}


def _inputs(kind):
  """Logits f32[2,8,8,6] and labels with ~20% void pixels, class 4 absent from the batch, class 5
  from image 0 and class 2 from image 1 (so that "present" and "all" differ, per batch and image).
  "saturated" logits give many errors of exactly 0 and 1, ties among themselves and with the void
  pixels' padding in the Lovász sort; "image1_void" leaves image 1 without a valid pixel (per-image
  losses average over the images that have one).
  """
  seed, scale = INPUTS[kind]
  logits, labels = _batch(seed, shape=(2, 8, 8, 6), scale=scale)
  labels[labels == 4] = 0
  labels[0][labels[0] == 5] = 1
  labels[1][labels[1] == 2] = 3
  if kind == "image1_void":
    labels[1] = IGNORE
  return logits, labels


_evaluate = jax.jit(
  lambda z, y: {name: loss(z, y, **options) for name, (loss, options, _) in CASES.items()}
)


@functools.cache
def _values(kind):
  return {name: float(v) for name, v in _evaluate(*_inputs(kind)).items()}


@pytest.mark.parametrize("kind", list(INPUTS))
@pytest.mark.parametrize("name", list(CASES))
def test_matches_reference(name, kind):
  _, options, reference = CASES[name]
  logits, labels = _inputs(kind)
  # The references see only the valid pixels (Lovász: the JAX version sorts void pixels last
  # instead; equal values show that the padding changes nothing).
  expected = reference(logits, labels, **options)
  np.testing.assert_allclose(_values(kind)[name], expected, RTOL, ATOL)


def test_tversky_with_half_weights_is_dice_with_double_smoothing():
  # (TP + s) / (TP + (FP + FN) / 2 + s) = (2 TP + 2s) / (ΣP + ΣG + 2s).
  values = _values("seed0")
  np.testing.assert_allclose(values["tversky_half"], values["dice_all_batch_s2"], RTOL, ATOL)
  np.testing.assert_allclose(values["tversky_half_s0"], values["dice_all_batch_s0"], RTOL, ATOL)


def test_focal_with_gamma_zero_is_cross_entropy():
  values = _values("seed0")
  np.testing.assert_allclose(values["focal_gamma0"], values["ce"], RTOL, ATOL)


def test_focal_tversky_with_unit_gamma_is_tversky():
  values = _values("seed0")
  np.testing.assert_allclose(values["focal_tversky_g1"], values["tversky_fp"], RTOL, ATOL)


@pytest.mark.parametrize("loss", [semantic.dice_loss, semantic.lovasz_softmax])
def test_unknown_classes_mode_raises(loss):
  logits, labels = _batch()
  with pytest.raises(ValueError, match="classes must be one of"):
    loss(logits, labels, classes="some")


# ---------------------------------------------------------------------------- hand-worked cases
# Tiny images with C = 2 (or 3). Logits (0, ln 3) give p = (1/4, 3/4); (0, 0) give (1/2, 1/2). The
# last pixel is void and must change nothing.
LN3 = math.log(3.0)
HALF_AND_QUARTERS = np.array([[[[0.0, LN3], [0.0, 0.0], [5.0, -5.0]]]], np.float32)
TWICE_QUARTERS = np.array([[[[0.0, LN3], [0.0, LN3], [5.0, -5.0]]]], np.float32)
LABELS = np.array([[[1, 0, IGNORE]]])


def _losses(logits, labels, *calls):
  """Values of several (loss, options) on one input, from a single compile."""
  values = jax.jit(lambda z, y: [loss(z, y, **options) for loss, options in calls])
  return [float(v) for v in values(logits, labels)]


def test_cross_entropy_by_hand():
  plain, weighted, smoothed = _losses(
    HALF_AND_QUARTERS,
    LABELS,
    (semantic.cross_entropy, {}),
    (semantic.cross_entropy, {"class_weights": (1.0, 3.0)}),
    (semantic.cross_entropy, {"label_smoothing": 0.2}),
  )
  # -ln(3/4) = ln(4/3) and -ln(1/2) = ln 2.
  np.testing.assert_allclose(plain, (math.log(4 / 3) + math.log(2)) / 2, RTOL)
  # Weights w = (1, 3): (3 ln(4/3) + 1 ln 2) / (3 + 1).
  np.testing.assert_allclose(weighted, (3 * math.log(4 / 3) + math.log(2)) / 4, RTOL)
  # ε = 0.2: targets (0.1, 0.9) and (0.9, 0.1); pixel 1: -0.1 ln(1/4) - 0.9 ln(3/4); pixel 2: the
  # target is symmetric and p = (1/2, 1/2), so ln 2.
  expected = (0.1 * math.log(4) + 0.9 * math.log(4 / 3) + math.log(2)) / 2
  np.testing.assert_allclose(smoothed, expected, RTOL)


def test_dice_by_hand():
  # Both pixels p = (1/4, 3/4), labels (1, 0), smooth 1:
  # class 0: ΣPG = 1/4, ΣP = 1/2, ΣG = 1 → (1/2 + 1) / (1/2 + 1 + 1) = 3/5;
  # class 1: ΣPG = 3/4, ΣP = 3/2, ΣG = 1 → (3/2 + 1) / (3/2 + 1 + 1) = 5/7;
  # loss = 1 - (3/5 + 5/7) / 2 = 12/35.
  (loss,) = _losses(TWICE_QUARTERS, LABELS, (semantic.dice_loss, {}))
  np.testing.assert_allclose(loss, 12 / 35, RTOL)


def test_dice_present_classes_by_hand():
  # C = 3, uniform p = 1/3, both labels 1, smooth 1. Class 1: (2·2/3 + 1) / (2/3 + 2 + 1) = 7/11;
  # classes 0 and 2 (absent): (0 + 1) / (2/3 + 0 + 1) = 3/5.
  present, every = _losses(
    np.zeros((1, 1, 2, 3), np.float32),
    np.array([[[1, 1]]]),
    (semantic.dice_loss, {"classes": "present"}),
    (semantic.dice_loss, {"classes": "all"}),
  )
  # "present": 1 - 7/11 = 4/11; "all": 1 - (3/5 + 7/11 + 3/5) / 3 = 1 - 101/165 = 64/165.
  np.testing.assert_allclose(present, 4 / 11, RTOL)
  np.testing.assert_allclose(every, 64 / 165, RTOL)


def test_focal_by_hand():
  plain, weighted = _losses(
    HALF_AND_QUARTERS,
    LABELS,
    (semantic.focal_loss, {}),
    (semantic.focal_loss, {"alpha": (0.25, 0.75)}),
  )
  # γ = 2: (1 - 3/4)² ln(4/3) = ln(4/3) / 16 and (1 - 1/2)² ln 2 = ln(2) / 4.
  np.testing.assert_allclose(plain, (math.log(4 / 3) / 16 + math.log(2) / 4) / 2, RTOL)
  # α = (1/4, 3/4): the first term (class 1) × 3/4, the second (class 0) × 1/4.
  expected = (0.75 * math.log(4 / 3) / 16 + 0.25 * math.log(2) / 4) / 2
  np.testing.assert_allclose(weighted, expected, RTOL)


def test_tversky_and_focal_tversky_by_hand():
  # Both pixels p = (1/4, 3/4), labels (1, 0), α = 0.7 (FP), β = 0.3 (FN), smooth 1:
  # class 0: TP = 1/4, FP = 1/4, FN = 3/4 → (1/4 + 1) / (1/4 + 0.175 + 0.225 + 1) = 25/33;
  # class 1: TP = 3/4, FP = 3/4, FN = 1/4 → (3/4 + 1) / (3/4 + 0.525 + 0.075 + 1) = 35/47.
  options = {"alpha": 0.7, "beta": 0.3}
  tversky, focal_tversky = _losses(
    TWICE_QUARTERS,
    LABELS,
    (semantic.tversky_loss, options),
    (semantic.focal_tversky_loss, {"gamma": 0.75, **options}),
  )
  np.testing.assert_allclose(tversky, 1 - (25 / 33 + 35 / 47) / 2, RTOL)
  # γ = 3/4: ((1 - 25/33)^(3/4) + (1 - 35/47)^(3/4)) / 2 = ((8/33)^0.75 + (12/47)^0.75) / 2.
  np.testing.assert_allclose(focal_tversky, ((8 / 33) ** 0.75 + (12 / 47) ** 0.75) / 2, RTOL)


def test_lovasz_by_hand():
  # Both pixels p = (1/4, 3/4), labels (1, 0).
  # Class 0: fg = (0, 1), errors (1/4, 3/4) → sorted (3/4 fg, 1/4 bg); gts = 1,
  # intersection (0, 0), union (1, 2), Jaccard (1, 1), gradient (1, 0): L_0 = 3/4.
  # Class 1: fg = (1, 0), errors (1/4, 3/4) → sorted (3/4 bg, 1/4 fg); intersection (1, 0),
  # union (2, 2), Jaccard (1/2, 1), gradient (1/2, 1/2): L_1 = 3/8 + 1/8 = 1/2.
  # Mean (3/4 + 1/2) / 2 = 5/8.
  (loss,) = _losses(TWICE_QUARTERS, LABELS, (semantic.lovasz_softmax, {}))
  np.testing.assert_allclose(loss, 5 / 8, RTOL)

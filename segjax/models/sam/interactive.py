"""SAM trained and evaluated as an interactive segmenter: prompts simulated from ground-truth masks.

Training follows SAM's recipe (Kirillov et al., 2023, §3 and appendix A): per object, a first
prompt (a point drawn uniformly inside the mask, or the mask's box with noise), then `clicks`
points each drawn uniformly from the error region of the previous prediction, whose low-res
logits are fed back as the mask prompt. Evaluation runs RITM's deterministic click protocol
(`segjax.metrics.interactive.next_clicks`) and returns the IoU after every click.

The image is encoded once and its embedding shared by all of its objects' prompt sets (B·G of
them). Points accumulate: iteration t decodes exactly the prompts given so far, so no padding point
is ever added besides the official one that SAM appends to point-only prompts (padding points are
not no-ops in SAM).

`Sam` is the submodule `sam`: official weights converted by `segjax.convert.sam` load under
`params/sam/...`, and the positional encoding's Gaussian matrix under
`batch_stats/sam/prompt_encoder/pe_layer/positional_encoding_gaussian_matrix` (`from_sam`), the
collection the training loop carries without optimising, as it does frozen batch-norm statistics.
"""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from segjax.errors import InputError
from segjax.metrics.interactive import next_clicks
from segjax.models.sam.config import SamConfig
from segjax.models.sam.model import Sam

SIZES = ("vit_b", "vit_l", "vit_h")
# SAM's automatic mask generator keeps masks whose predicted IoU reaches this (pred_iou_thresh).
GRID_MIN_IOU = 0.88


def from_sam(variables: dict) -> dict:
  """`Sam`'s variables (`{"params", "buffers"}`, e.g. from `segjax.convert.sam.load`) laid out as
  `InteractiveSam`'s: `{"params": {"sam": ...}, "batch_stats": {"sam": ...}}`."""
  return {"params": {"sam": variables["params"]}, "batch_stats": {"sam": variables["buffers"]}}


def to_sam(variables: dict) -> dict:
  """`InteractiveSam`'s variables (a trained run's params and batch_stats) as `Sam`'s, for
  `segjax.promptable.SamPredictor`; the inverse of `from_sam`."""
  return {"params": variables["params"]["sam"], "buffers": variables["batch_stats"]["sam"]}


def _swap_buffers(variables):
  """Inside `sam` the loop's `batch_stats` are SAM's `buffers`, and back."""
  variables = dict(variables)
  buffers, batch_stats = variables.pop("buffers", {}), variables.pop("batch_stats", {})
  swapped = {"buffers": batch_stats, "batch_stats": buffers}
  return {k: v for k, v in swapped.items() if v}


def sample_in(key, masks):
  """A pixel drawn uniformly from each mask.

  `masks: bool[N,H,W]` -> `(yx i32[N,2], found bool[N])`; `yx` is meaningless where the mask is
  empty (`found` False).
  """
  n, _, w = masks.shape
  noise = jnp.where(masks, jax.random.uniform(key, masks.shape), -1.0).reshape(n, -1)
  y, x = jnp.divmod(jnp.argmax(noise, axis=-1), w)
  return jnp.stack([y, x], axis=-1).astype(jnp.int32), masks.any(axis=(1, 2))


def mask_boxes(masks):
  """Tight boxes `f32[N,4]` (x0, y0, x1, y1: first and last pixel indices, as SAM's
  `batched_mask_to_box`) of `masks: bool[N,H,W]`; zeros for an empty mask."""

  def span(occupied):  # [N,L] -> first and last True index
    index = jnp.arange(occupied.shape[-1])
    first = jnp.min(jnp.where(occupied, index, occupied.shape[-1]), axis=-1)
    return first, jnp.max(jnp.where(occupied, index, -1), axis=-1)

  (x0, x1), (y0, y1) = span(masks.any(axis=1)), span(masks.any(axis=2))
  boxes = jnp.stack([x0, y0, x1, y1], axis=-1).astype(jnp.float32)
  return jnp.where(masks.any(axis=(1, 2))[:, None], boxes, 0.0)


def jitter_boxes(key, boxes, size_hw, *, fraction: float = 0.1, max_std: float = 20.0):
  """SAM's box noise: each coordinate moves by a normal of std `fraction` of the box's side (its
  width for x, height for y), at most `max_std` pixels.

  The normal is cut at ±2 std, so that a box never drifts far nor turns inside out (each side
  moves by at most 0.2 of its length). `boxes: f[N,4]` (x0, y0, x1, y1) -> f32[N,4], clipped to
  the `size_hw` image.
  """
  w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
  std = jnp.minimum(fraction * jnp.stack([w, h, w, h], axis=-1), max_std)
  boxes = boxes + jax.random.truncated_normal(key, -2.0, 2.0, boxes.shape) * std
  high = np.asarray([size_hw[1], size_hw[0]] * 2, np.float32) - 1
  return jnp.clip(boxes, 0.0, high)


def error_clicks(key, pred, gt, ignore=None):
  """SAM's next training click: a pixel drawn uniformly from each error region.

  Args:
    key: PRNG key.
    pred, gt: bool[N,H,W] current predictions and ground truth.
    ignore: bool[N,H,W] pixels that are never errors, or None.
  Returns:
    `(yx i32[N,2], labels i32[N])`: 1 in a false negative, 0 in a false positive. Where nothing
    is wrong, a positive click inside `gt`; where `gt` is empty too, label -1 (not a point).
  """
  error = pred != gt
  if ignore is not None:
    error &= ~ignore
  region = jnp.where(error.any(axis=(1, 2), keepdims=True), error, gt)
  yx, found = sample_in(key, region)
  positive = gt[jnp.arange(gt.shape[0]), yx[:, 0], yx[:, 1]]
  return yx, jnp.where(found, positive.astype(jnp.int32), -1)


def mask_ious(pred, gt, keep=None):
  """IoU over the last two axes of bool masks, over the pixels in `keep` (all when None); 1.0
  where the union is empty, as `segjax.metrics.interactive.mask_iou`."""
  keep = True if keep is None else keep
  intersection = jnp.sum(pred & gt & keep, axis=(-2, -1))
  union = jnp.sum((pred | gt) & keep, axis=(-2, -1))
  return jnp.where(union > 0, intersection / jnp.maximum(union, 1), 1.0)


def objects(masks, scores, valid):
  """Inference outputs in the form of detections: `masks bool[B,G,H,W]`, their `boxes f32[B,G,4]`
  (x1, y1, x2, y2 pixel edges; zeros for an empty mask), `scores f32[B,G]`, `valid bool[B,G]`."""
  b, g, h, w = masks.shape
  flat = masks.reshape(b * g, h, w)
  edges = jnp.where(flat.any(axis=(1, 2))[:, None], np.float32([0, 0, 1, 1]), 0)
  boxes = (mask_boxes(flat) + edges).reshape(b, g, 4)
  return {"masks": masks, "boxes": boxes, "scores": scores, "valid": valid}


def _take(x, index):
  """`x[n, index[n]]` for `x: [N,K,...]`, `index: i[N]`."""
  return jnp.take_along_axis(x, index.reshape(-1, *[1] * (x.ndim - 1)), axis=1)[:, 0]


class InteractiveSam(nn.Module):
  """SAM prompted by simulated clicks on ground-truth objects.

  Attributes:
    num_classes: accepted for the training loop and ignored (SAM is class-agnostic).
    size: "vit_b", "vit_l" or "vit_h" for a published model (overrides every size field), or ""
      for the size fields, those of `SamConfig` (defaults: a small model for 256-pixel images).
    clicks: training iterations after the first prompt, each adding one point (SAM's recipe: 8,
      and 2 more that only feed the mask back, which this model leaves out).
    eval_clicks: clicks of the evaluation protocol (NoC and NoF count up to it; at least 5).
    grid_points: without targets, the image is prompted by a grid of this many points a side.
    dtype: compute dtype.

  `__call__(images f[B,H,W,3], *, train, targets=None)`: images normalised with SAM's
  `PIXEL_MEAN`/`PIXEL_STD`, H, W <= `image_size` (padded at the bottom right here). `targets`:
  `masks bool[B,G,H,W]`, `valid bool[B,G]`, optionally `ignore bool[B,H,W]` (void pixels: never
  clicked, out of losses and IoUs). L = 4·`image_size`/`patch_size` is the low-res side.

  Training (needs `targets` and the `sample` rng) returns, per iteration t = 0..`clicks`,
  `logits[t]: f32[B,G,K,L,L]` and `iou_predictions[t]: f32[B,G,K]` (K = 3 at t = 0, 1 after),
  and `targets bool[B,G,L,L]`, `ignore bool[B,L,L]`, `valid`, with the prompts: `points
  f32[B,G,1+clicks,2]` (xy input pixels; slot 0, the first point, is unused where `box_first`),
  `labels i32[B,G,1+clicks]`, `boxes f32[B,G,4]`, `box_first bool[B,G]`.

  Inference returns `objects`: masks, boxes, predicted-IoU scores and valid. With `targets`,
  those of the last click, and `ious f32[B,G,eval_clicks]`, the IoU after each click. Without,
  those of the grid's G = `grid_points`² prompts, valid where the predicted IoU reaches
  `GRID_MIN_IOU`.
  """

  num_classes: int = 1
  size: str = ""
  image_size: int = 256
  patch_size: int = 16
  encoder_depth: int = 4
  encoder_width: int = 192
  encoder_heads: int = 3
  encoder_window: int = 8
  global_attention_indexes: tuple[int, ...] = (1, 3)
  mlp_ratio: float = 4.0
  prompt_dim: int = 128
  decoder_depth: int = 2
  decoder_heads: int = 8
  decoder_mlp_dim: int = 512
  attention_downsample_rate: int = 2
  num_multimask_outputs: int = 3
  iou_head_depth: int = 3
  iou_head_hidden: int = 128
  mask_in_chans: int = 16
  use_rel_pos: bool = True
  clicks: int = 3
  eval_clicks: int = 20
  grid_points: int = 4
  dtype: jnp.dtype = jnp.float32

  @property
  def config(self) -> SamConfig:
    if self.size:
      if self.size not in SIZES:
        raise ValueError(f"size={self.size!r} is not one of {SIZES} (or '' for the size fields).")
      return getattr(SamConfig, self.size)()
    fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(SamConfig)}
    return SamConfig(**{**fields, "global_attention_indexes": tuple(self.global_attention_indexes)})

  @nn.nowrap  # called on the unbound model, outside `init` and `apply`
  def pretrained_variables(self, path) -> dict:
    """This model's variables from an official SAM checkpoint file (`segjax.convert.sam.load`),
    as `config.model.pretrained` loads them at initialisation.

    Raises:
      InputError: the file is not a SAM checkpoint, or one of other sizes than this model's.
    """
    from segjax.convert.sam import load  # the converter imports the models

    config, variables = load(path)
    if config != self.config:
      named = [size for size in SIZES if getattr(SamConfig, size)() == config]
      if named:
        fix = f"set config.model.kwargs.size={named[0]!r}"
      else:
        fields = dataclasses.fields(SamConfig)
        wrong = {f.name: getattr(config, f.name) for f in fields}
        wrong = {k: v for k, v in wrong.items() if getattr(self.config, k) != v}
        fix = "set " + ", ".join(f"config.model.kwargs.{k}={v!r}" for k, v in wrong.items())
      raise InputError(f"{path} holds a SAM of other sizes than config.model's: {fix}.")
    return from_sam(variables)

  def setup(self):
    sam = nn.map_variables(
      Sam,
      ("buffers", "batch_stats"),
      _swap_buffers,
      _swap_buffers,
      mutable=True,
      methods=["encode_image", "decode"],
    )
    self.sam = sam(self.config, self.dtype)

  def __call__(self, images, *, train: bool = False, targets=None):
    cfg = self.config
    h, w = images.shape[1:3]
    if max(h, w) > cfg.image_size:
      raise ValueError(f"Images of {h}x{w} do not fit SAM's {cfg.image_size}-pixel input.")
    x = jnp.pad(images, ((0, 0), (0, cfg.image_size - h), (0, cfg.image_size - w), (0, 0)))
    embeddings = self.sam.encode_image(x)
    if targets is None:
      if train:
        raise ValueError("InteractiveSam in training needs `targets` (masks, valid).")
      return self._grid(embeddings, (h, w))
    if train:
      return self._train(embeddings, targets)
    return self._evaluate(embeddings, targets)

  @property
  def _stride(self) -> int:
    """Input pixels per low-res cell."""
    return self.config.image_size // (4 * self.config.embedding_size)

  def _low_res(self, masks):
    """`masks: bool[N,H,W]` padded to the input and pooled to bool[N,L,L]: cells at least half
    covered."""
    n, h, w = masks.shape
    size, s = self.config.image_size, self._stride
    masks = jnp.pad(masks, ((0, 0), (0, size - h), (0, size - w)))
    cells = masks.reshape(n, size // s, s, size // s, s).mean(axis=(2, 4))
    return cells >= 0.5

  def _upsample(self, logits, hw):
    """Low-res `logits: f32[N,L,L]` -> f32[N,H,W]: SAM's bilinear resize to the input, cropped."""
    size = self.config.image_size
    upsampled = jax.image.resize(logits, (logits.shape[0], size, size), "bilinear")
    return upsampled[:, : hw[0], : hw[1]]

  def _decode(self, embeddings, image, groups, points, labels, boxes, mask_inputs, multimask):
    """Decodes groups of prompt sets, each with one prompt structure, back in instance order.

    Args:
      embeddings: f32[B,S,S,D]; `image: i32[N]` is each prompt set's image.
      groups: `(index i32[n], box)` pairs that partition 0..N-1: with `box`, the prompts are
        `boxes[index]` and `points[index, 1:]`, else `points[index]` alone.
      points, labels: f32[N,P,2], i32[N,P]. boxes: f32[N,4] or None.
      mask_inputs: f32[N,L,L] logits or None.
      multimask: SAM's K ambiguous masks for point-only prompt sets; box groups' single mask
        is repeated K times.
    Returns:
      `(logits f32[N,K,L,L], iou f32[N,K])`, K = `num_multimask_outputs` or 1.
    """
    k = self.config.num_multimask_outputs if multimask else 1
    logits, ious = [], []
    for index, box in groups:
      if index.shape[0] == 0:
        continue
      p, lab = (points[index, 1:], labels[index, 1:]) if box else (points[index], labels[index])
      masks = None if mask_inputs is None else mask_inputs[index][..., None]
      low_res, iou = self.sam.decode(
        embeddings[image[index]],
        p if p.shape[1] else None,
        lab if p.shape[1] else None,
        boxes[index] if box else None,
        masks,
        multimask_output=multimask and not box,
      )
      logits.append(jnp.broadcast_to(low_res, (low_res.shape[0], k, *low_res.shape[2:])))
      ious.append(jnp.broadcast_to(iou, (iou.shape[0], k)))
    inverse = jnp.argsort(jnp.concatenate([index for index, _ in groups]))
    return jnp.concatenate(logits)[inverse], jnp.concatenate(ious)[inverse]

  def _train(self, embeddings, targets):
    b, g, h, w = targets["masks"].shape
    n, s = b * g, self._stride
    masks = targets["masks"].reshape(n, h, w)
    image = jnp.arange(n) // g
    low = self._low_res(masks)
    ignore = self._low_res(targets.get("ignore", jnp.zeros((b, h, w), bool)))
    keys = jax.random.split(self.make_rng("sample"), 3 + self.clicks)
    # Half the objects, drawn at random, start from a box: SAM's probability 0.5, with static
    # group sizes.
    order = jax.random.permutation(keys[0], n)
    groups = ((order[n // 2 :], False), (order[: n // 2], True))
    first, found = sample_in(keys[1], masks)
    points = first[:, None, ::-1].astype(jnp.float32)
    labels = jnp.where(found, 1, -1)[:, None]
    boxes = jitter_boxes(keys[2], mask_boxes(masks), (h, w))
    logits, ious, mask_inputs = [], [], None
    for t in range(1 + self.clicks):
      if t:
        yx, label = error_clicks(keys[2 + t], mask_inputs > 0, low, ignore[image])
        xy = (yx[:, ::-1] + 0.5) * s - 0.5  # the cell's centre in input pixels
        points = jnp.concatenate([points, xy[:, None]], axis=1)
        labels = jnp.concatenate([labels, label[:, None]], axis=1)
      low_res, iou = self._decode(
        embeddings, image, groups, points, labels, boxes, mask_inputs, multimask=t == 0
      )
      logits.append(low_res.reshape(b, g, *low_res.shape[1:]))
      ious.append(iou.reshape(b, g, -1))
      # SAM feeds back, and samples the next point from, the mask of highest predicted IoU.
      mask_inputs = jax.lax.stop_gradient(_take(low_res, jnp.argmax(iou, axis=-1)))
    box_first = jnp.zeros((n,), bool).at[order[: n // 2]].set(True)
    return {
      "logits": logits,
      "iou_predictions": ious,
      "targets": low.reshape(b, g, *low.shape[1:]),
      "ignore": ignore,
      "valid": targets["valid"],
      "points": points.reshape(b, g, -1, 2),
      "labels": labels.reshape(b, g, -1),
      "boxes": boxes.reshape(b, g, 4),
      "box_first": box_first.reshape(b, g),
    }

  def _evaluate(self, embeddings, targets):
    """RITM's protocol: each click from `next_clicks` on the previous full-size prediction (the
    first on an empty one), multimask at the first click, the previous logits fed back. Where no
    click is left (`next_clicks`'s sentinel), the prediction and its IoU stay as they are."""
    b, g, h, w = targets["masks"].shape
    n = b * g
    gt = targets["masks"].reshape(n, h, w)
    image = jnp.arange(n) // g
    keep = None if "ignore" not in targets else ~targets["ignore"][image]
    groups = ((jnp.arange(n), False),)
    pred, clicked = jnp.zeros_like(gt), jnp.zeros_like(gt)
    points, labels = jnp.zeros((n, 0, 2)), jnp.zeros((n, 0), jnp.int32)
    mask_inputs, scores, ious = None, jnp.zeros((n,)), []
    for c in range(self.eval_clicks):
      yx, positive = next_clicks(pred, gt, keep, clicked)
      clicking = yx[:, 0] >= 0
      clicked = clicked.at[jnp.arange(n), yx[:, 0], yx[:, 1]].max(clicking)
      points = jnp.concatenate([points, yx[:, None, ::-1].astype(jnp.float32)], axis=1)
      label = jnp.where(clicking, positive.astype(jnp.int32), -1)
      labels = jnp.concatenate([labels, label[:, None]], axis=1)
      low_res, iou = self._decode(
        embeddings, image, groups, points, labels, None, mask_inputs, multimask=c == 0
      )
      best = jnp.argmax(iou, axis=-1)
      low_res, iou = _take(low_res, best), _take(iou, best)
      pred = jnp.where(clicking[:, None, None], self._upsample(low_res, (h, w)) > 0, pred)
      previous = low_res if mask_inputs is None else mask_inputs
      mask_inputs = jnp.where(clicking[:, None, None], low_res, previous)
      scores = jnp.where(clicking, iou, scores)
      ious.append(mask_ious(pred, gt, keep))
    outputs = objects(pred.reshape(b, g, h, w), scores.reshape(b, g), targets["valid"])
    return {**outputs, "ious": jnp.stack(ious, axis=-1).reshape(b, g, -1)}

  def _grid(self, embeddings, hw):
    """One positive point per cell of a `grid_points`² grid, its most confident mask."""
    b, k, (h, w) = embeddings.shape[0], self.grid_points, hw
    centres = (jnp.arange(k) + 0.5) / k
    y, x = jnp.meshgrid(centres * h, centres * w, indexing="ij")
    grid = jnp.stack([x.ravel(), y.ravel()], axis=-1)
    n = b * k * k
    points = jnp.tile(grid, (b, 1))[:, None]
    groups = ((jnp.arange(n), False),)
    labels = jnp.ones((n, 1), jnp.int32)
    image = jnp.arange(n) // (k * k)
    low_res, iou = self._decode(embeddings, image, groups, points, labels, None, None, True)
    best = jnp.argmax(iou, axis=-1)
    masks = self._upsample(_take(low_res, best), hw) > 0
    scores = _take(iou, best).reshape(b, k * k)
    return objects(masks.reshape(b, k * k, h, w), scores, scores >= GRID_MIN_IOU)

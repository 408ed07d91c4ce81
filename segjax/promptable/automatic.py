"""Masks of everything in an image, as the official `SamAutomaticMaskGenerator` without crops: a
grid of single positive points, each decoded into K = 3 masks, kept when the predicted IoU and
the stability score are high enough, de-duplicated by box NMS.

Supported: `crop_n_layers=0` (the whole image only, no crop layers) and `min_mask_region_area=0`
(no clean-up of small regions and holes).
"""

import functools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from pycocotools import mask as mask_utils

from segjax.models.sam import Sam, SamConfig
from segjax.ops import nms
from segjax.promptable.predictor import MASK_THRESHOLD, SamPredictor
from segjax.promptable.transforms import postprocess_masks, scale_coords

OUTPUT_MODES = ("binary_mask", "uncompressed_rle", "coco_rle")


def point_grid(points_per_side: int) -> np.ndarray:
  """f64[n·n,2] xy in [0,1]: the centres of an n x n grid of cells, row by row."""
  offset = 1 / (2 * points_per_side)
  side = np.linspace(offset, 1 - offset, points_per_side)
  x, y = np.meshgrid(side, side)
  return np.stack([x, y], axis=-1).reshape(-1, 2)


def stability_score(logits, offset: float, threshold: float = MASK_THRESHOLD) -> jax.Array:
  """`logits: f[...,H,W]` -> f32[...]: the IoU of the masks thresholded at `threshold + offset`
  and at `threshold - offset` (the first lies inside the second); NaN for an empty union."""
  inner = jnp.sum(logits > threshold + offset, axis=(-2, -1), dtype=jnp.int32)
  outer = jnp.sum(logits > threshold - offset, axis=(-2, -1), dtype=jnp.int32)
  return inner / outer


def masks_to_boxes(masks) -> jax.Array:
  """`masks: bool[...,H,W]` -> i32[...,4]: (x0, y0, x1, y1) of the first and last pixel inside
  (inclusive), [0, 0, 0, 0] for an empty mask."""

  def span(inside):  # bool[...,n] -> first and last index inside
    index = jnp.arange(inside.shape[-1])
    n = inside.shape[-1]
    return jnp.min(jnp.where(inside, index, n), -1), jnp.max(jnp.where(inside, index, -1), -1)

  (x0, x1), (y0, y1) = span(jnp.any(masks, -2)), span(jnp.any(masks, -1))
  boxes = jnp.stack([x0, y0, x1, y1], axis=-1).astype(jnp.int32)
  return jnp.where(jnp.any(masks, (-2, -1))[..., None], boxes, 0)


def mask_to_rle(mask: np.ndarray) -> dict[str, Any]:
  """`mask: bool[H,W]` -> `{"size": [H, W], "counts": [...]}`, COCO's uncompressed RLE: lengths
  of alternating runs of 0s and 1s in column-major order, starting with 0s."""
  flat = np.asarray(mask).T.ravel()
  changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
  counts = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
  return {"size": list(mask.shape), "counts": [0, *counts] if flat[0] else counts}


@functools.partial(jax.jit, static_argnames=("model", "input_size", "original_size"))
def _decode_grid(model: Sam, variables, embedding, points, input_size, original_size, offset):
  """`points: f32[B,2]` in input pixels, each a prompt set of one positive point -> `(masks
  bool[B·K,H,W], iou f32[B·K], stability f32[B·K], boxes i32[B·K,4])`, point-major."""
  b = points.shape[0]
  low_res, iou = model.apply(
    variables,
    jnp.broadcast_to(embedding, (b, *embedding.shape[1:])),
    points[:, None],
    jnp.ones((b, 1), jnp.int32),
    multimask_output=True,
    method=Sam.decode,
  )
  logits = postprocess_masks(low_res, input_size, original_size, model.config.image_size)
  logits = logits.reshape(-1, *original_size)
  masks = logits > MASK_THRESHOLD
  return masks, iou.reshape(-1), stability_score(logits, offset), masks_to_boxes(masks)


_nms = jax.jit(nms, static_argnames="max_output")


class SamAutomaticMaskGenerator:
  """Generates masks for a whole image with SAM.

  Args:
    predictor: a `SamPredictor`, or the `(config, variables)` of one.
    points_per_side: the grid has points_per_side² points, each prompting K masks.
    points_per_batch: points decoded together (memory: K·points_per_batch float masks at the
      image's size).
    pred_iou_thresh: masks with a predicted IoU not above it are dropped (0: none).
    stability_score_thresh: masks with a stability score below it are dropped (0: none).
    stability_score_offset: the logit offset of `stability_score`.
    box_nms_thresh: of two masks whose boxes overlap by a greater IoU, the one with the lower
      predicted IoU is dropped.
    crop_n_layers, min_mask_region_area: 0 only (see the module's docstring).
    output_mode: a record's `segmentation` as a `"binary_mask"` bool[H,W], a COCO
      `"uncompressed_rle"` or a compressed `"coco_rle"` (counts as a string).
  """

  def __init__(
    self,
    predictor: SamPredictor | tuple[SamConfig, Mapping],
    points_per_side: int = 32,
    points_per_batch: int = 64,
    pred_iou_thresh: float = 0.88,
    stability_score_thresh: float = 0.95,
    stability_score_offset: float = 1.0,
    box_nms_thresh: float = 0.7,
    crop_n_layers: int = 0,
    min_mask_region_area: int = 0,
    output_mode: str = "binary_mask",
  ):
    if crop_n_layers != 0:
      raise ValueError(f"crop_n_layers={crop_n_layers}: only 0 (no crop layers) is supported.")
    if min_mask_region_area != 0:
      raise ValueError(
        f"min_mask_region_area={min_mask_region_area}: only 0 (no region clean-up) is supported."
      )
    if output_mode not in OUTPUT_MODES:
      raise ValueError(f"output_mode={output_mode!r} is not one of {OUTPUT_MODES}.")
    if points_per_side < 1 or points_per_batch < 1:
      raise ValueError(
        f"points_per_side={points_per_side} and points_per_batch={points_per_batch} must be >= 1."
      )
    self.predictor = predictor if isinstance(predictor, SamPredictor) else SamPredictor(*predictor)
    self.point_grid = point_grid(points_per_side)
    self.points_per_batch = min(points_per_batch, len(self.point_grid))
    self.pred_iou_thresh = pred_iou_thresh
    self.stability_score_thresh = stability_score_thresh
    self.stability_score_offset = stability_score_offset
    self.box_nms_thresh = box_nms_thresh
    self.output_mode = output_mode

  def generate(self, image: np.ndarray) -> list[dict[str, Any]]:
    """Masks of `image: u8[H,W,3]`, as records sorted by predicted IoU, descending, with keys
    `segmentation` (see `output_mode`), `area` (pixels), `bbox` [x, y, w, h] (w, h: last minus
    first pixel inside, as the official), `predicted_iou`, `point_coords` [[x, y]] (the prompt, in
    image pixels), `stability_score` and `crop_box` [0, 0, W, H]. Leaves the image set on the
    predictor."""
    predictor = self.predictor
    predictor.set_image(image)
    h, w = predictor.original_size
    k = predictor.config.num_multimask_outputs
    points = self.point_grid * np.array([w, h])
    model_points = scale_coords(points, (h, w), predictor.config.image_size).astype(np.float32)
    kept = {"masks": [], "iou": [], "stability": [], "boxes": [], "points": []}
    for start in range(0, len(points), self.points_per_batch):
      batch = model_points[start : start + self.points_per_batch]
      n = len(batch)
      # The last batch is padded to the others' shape, to compile once; its padding is dropped.
      batch = np.pad(batch, ((0, self.points_per_batch - n), (0, 0)))
      masks, iou, stability, boxes = _decode_grid(
        predictor.model,
        predictor.variables,
        predictor.get_image_embedding(),
        batch,
        predictor.input_size,
        predictor.original_size,
        self.stability_score_offset,
      )
      iou, stability, boxes = (np.asarray(x[: n * k]) for x in (iou, stability, boxes))
      keep = np.ones(n * k, bool)
      if self.pred_iou_thresh > 0:
        keep &= iou > self.pred_iou_thresh
      if self.stability_score_thresh > 0:
        keep &= stability >= self.stability_score_thresh
      index = np.flatnonzero(keep)
      if len(index):
        kept["masks"].append(np.asarray(masks[index]))  # only the kept masks leave the device
        kept["iou"].append(iou[index])
        kept["stability"].append(stability[index])
        kept["boxes"].append(boxes[index])
        kept["points"].append(points[start + index // k])
    if not kept["masks"]:
      return []
    kept = {key: np.concatenate(value) for key, value in kept.items()}
    return [self._record(kept, i, (h, w)) for i in self._suppress(kept["boxes"], kept["iou"])]

  def _suppress(self, boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Indices of the boxes NMS keeps, by score, descending (torchvision's `batched_nms` with one
    category). Padded to a power of two, so that few sizes compile."""
    n = len(boxes)
    size = 1 << (n - 1).bit_length()
    indices, valid = _nms(
      np.pad(boxes, ((0, size - n), (0, 0))).astype(np.float32),
      np.pad(scores, (0, size - n)),
      iou_threshold=self.box_nms_thresh,
      max_output=size,
      valid=np.arange(size) < n,
    )
    return np.asarray(indices)[np.asarray(valid)]

  def _record(self, kept: dict[str, np.ndarray], i: int, size: tuple[int, int]) -> dict[str, Any]:
    mask = kept["masks"][i]
    x0, y0, x1, y1 = kept["boxes"][i].tolist()
    if self.output_mode == "binary_mask":
      segmentation = mask
    elif self.output_mode == "uncompressed_rle":
      segmentation = mask_to_rle(mask)
    else:
      segmentation = mask_utils.encode(np.asfortranarray(mask, np.uint8))
      segmentation["counts"] = segmentation["counts"].decode("utf-8")
    return {
      "segmentation": segmentation,
      "area": int(mask.sum()),
      "bbox": [x0, y0, x1 - x0, y1 - y0],
      "predicted_iou": float(kept["iou"][i]),
      "point_coords": [kept["points"][i].tolist()],
      "stability_score": float(kept["stability"][i]),
      "crop_box": [0, 0, size[1], size[0]],
    }

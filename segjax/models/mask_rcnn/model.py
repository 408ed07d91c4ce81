"""Mask R-CNN (He et al., 2017) on a ResNet-FPN, with every shape static under jit.

Training (`train=True`, with `targets`): the model also builds its own targets, because sampling
RoIs needs the proposals it computes; it returns predictions next to their targets and
`segjax.tasks.instance` turns them into losses. Inference returns a fixed number of detections
per image with a validity mask. Defaults are detectron2's (`mask_rcnn_R_50_FPN_1x`).
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from segjax.models import backbones
from segjax.models.fpn import FPN
from segjax.models.mask_rcnn import targets as targets_lib
from segjax.models.mask_rcnn.heads import BoxHead, MaskHead, RPNHead
from segjax.ops.anchors import generate_anchors
from segjax.ops.boxes import BoxCoder, clip_boxes
from segjax.ops.masks import paste_masks
from segjax.ops.nms import batched_nms
from segjax.ops.roi_align import multilevel_roi_align

RPN_STRIDES = (4, 8, 16, 32, 64)
ROI_STRIDES = (4, 8, 16, 32)
ROI_BOX_CODER = BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))


class MaskRCNN(nn.Module):
  """ResNet -> FPN (P2-P6) -> RPN -> RoI box head and mask head.

  Attributes:
    num_classes: K object classes (no background).
    backbone, deep_stem, avg_down, backbone_width, norm, dtype: the ResNet and its norms
      (detectron2 freezes batch norm: "frozen_batch").
    anchor_sizes: one anchor size per level P2-P6; ratios (h/w) at every level.
    rpn_*: proposals kept per level before NMS and per image after it, NMS IoU, sampled anchors.
    roi_*: RoIs sampled per image and their foreground fraction.
    score_threshold, nms_threshold, detections: inference post-processing.

  `images: f[B,H,W,3]`, H and W multiples of 32. `targets` (training): `boxes f32[B,G,4]`,
  `labels i32[B,G]` (0..K-1), `masks bool[B,G,H,W]`, `valid bool[B,G]`.
  Inference returns `boxes f32[B,D,4]`, `scores f32[B,D]`, `labels i32[B,D]`,
  `masks bool[B,D,H,W]`, `valid bool[B,D]`, D = `detections`.
  """

  num_classes: int
  backbone: str = "resnet50"
  deep_stem: bool = False
  avg_down: bool = False
  backbone_width: int = 64
  norm: str = "frozen_batch"
  fpn_features: int = 256
  anchor_sizes: tuple[int, ...] = (32, 64, 128, 256, 512)
  anchor_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
  rpn_pre_nms_topk_train: int = 2000
  rpn_post_nms_topk_train: int = 1000
  rpn_pre_nms_topk_test: int = 1000
  rpn_post_nms_topk_test: int = 1000
  rpn_nms_threshold: float = 0.7
  rpn_batch_size: int = 256
  roi_batch_size: int = 512
  roi_positive_fraction: float = 0.25
  box_head_hidden: int = 1024
  mask_head_features: int = 256
  score_threshold: float = 0.05
  nms_threshold: float = 0.5
  detections: int = 100
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, images, *, train: bool = False, targets=None):
    height, width = images.shape[1:3]
    if height % 32 or width % 32:
      raise ValueError(f"Mask R-CNN needs H and W divisible by 32; got images {images.shape}.")
    c = backbones.backbone_of(self)(images, train=train)
    p = FPN(self.fpn_features, dtype=self.dtype, name="fpn")(c)
    levels = [p[f"p{i}"] for i in range(2, 7)]
    anchors_per_level = generate_anchors(
      (height, width), strides=RPN_STRIDES, sizes=self.anchor_sizes, ratios=self.anchor_ratios
    )
    rpn_head = RPNHead(len(self.anchor_ratios), dtype=self.dtype, name="rpn_head")
    logits, deltas = zip(*(rpn_head(x) for x in levels), strict=True)
    anchors = jnp.asarray(np.concatenate(anchors_per_level))
    level_sizes = [a.shape[0] for a in anchors_per_level]
    rpn_logits, rpn_deltas = jnp.concatenate(logits, 1), jnp.concatenate(deltas, 1)

    pre, post = (
      (self.rpn_pre_nms_topk_train, self.rpn_post_nms_topk_train)
      if train
      else (self.rpn_pre_nms_topk_test, self.rpn_post_nms_topk_test)
    )
    proposals, proposal_valid = jax.vmap(
      lambda lg, dl: self._proposals(lg, dl, anchors, level_sizes, (height, width), pre, post)
    )(jax.lax.stop_gradient(rpn_logits), jax.lax.stop_gradient(rpn_deltas))
    features = [p[f"p{i}"] for i in range(2, 6)]
    box_head = BoxHead(self.detection_classes, self.box_head_hidden, self.dtype, name="box_head")
    mask_head = MaskHead(
      self.detection_classes, self.mask_head_features, dtype=self.dtype, name="mask_head"
    )

    heads = (box_head, mask_head)
    if train:
      rpn = {"anchors": anchors, "logits": rpn_logits, "deltas": rpn_deltas}
      outputs = self._train_outputs(targets, rpn, proposals, proposal_valid, features, heads)
    else:
      outputs = self._detect(proposals, proposal_valid, features, heads, (height, width))
    return {**outputs, **self.extra_outputs(p, (height, width), train)}

  @property
  def detection_classes(self) -> int:
    """K, the classes the box and mask heads predict."""
    return self.num_classes

  def extra_outputs(self, pyramid, image_hw, train: bool) -> dict:
    """Outputs of further heads on the pyramid `{"p2".."p6"}` (none here; Panoptic FPN's
    semantic head)."""
    del pyramid, image_hw, train
    return {}

  def _proposals(self, logits, deltas, anchors, level_sizes, image_hw, pre_nms, post_nms):
    """One image's RPN proposals: top `pre_nms` per level, decoded, clipped, NMS per level,
    the best `post_nms` overall. -> `(boxes f32[post_nms,4], valid bool[post_nms])`."""
    boxes, scores, level_ids, start = [], [], [], 0
    for level, size in enumerate(level_sizes):
      k = min(pre_nms, size)
      top_scores, top = jax.lax.top_k(logits[start : start + size], k)
      decoded = BoxCoder().decode(deltas[start + top], anchors[start + top])
      boxes.append(clip_boxes(decoded, *image_hw))
      scores.append(top_scores)
      level_ids.append(jnp.full((k,), level, jnp.int32))
      start += size
    boxes, scores, level_ids = (jnp.concatenate(x) for x in (boxes, scores, level_ids))
    nonempty = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    keep, keep_valid = batched_nms(
      boxes,
      scores,
      level_ids,
      iou_threshold=self.rpn_nms_threshold,
      max_output=min(post_nms, boxes.shape[0]),
      valid=nonempty & jnp.isfinite(scores),
    )
    return boxes[keep], keep_valid

  def _pool(self, features, boxes, size):
    """RoIAlign from the FPN level of each box: `boxes f32[B,R,4]` -> f[B*R,size,size,D]."""
    pooled = jax.vmap(
      lambda f, b: multilevel_roi_align(f, b, strides=ROI_STRIDES, output_size=size)
    )(features, boxes)
    return pooled.reshape(-1, *pooled.shape[2:])

  def _train_outputs(self, targets, rpn, proposals, proposal_valid, features, heads):
    if targets is None:
      raise ValueError("Mask R-CNN in training needs `targets` (boxes, labels, masks, valid).")
    box_head, mask_head = heads
    anchors, rpn_logits, rpn_deltas = rpn["anchors"], rpn["logits"], rpn["deltas"]
    b = rpn_logits.shape[0]
    keys = jax.random.split(self.make_rng("sample"), 2 * b).reshape(2, b)
    rpn_labels, rpn_box_targets = jax.vmap(
      lambda gt, v, k: targets_lib.rpn_targets(anchors, gt, v, k, num_samples=self.rpn_batch_size)
    )(targets["boxes"], targets["valid"], keys[0])

    def sample(p, pv, gb, gl, gv, k):
      return targets_lib.sample_rois(
        p,
        pv,
        gb,
        gl,
        gv,
        k,
        num_samples=self.roi_batch_size,
        positive_fraction=self.roi_positive_fraction,
      )

    rois = jax.vmap(sample)(
      proposals, proposal_valid, targets["boxes"], targets["labels"], targets["valid"], keys[1]
    )
    cls_logits, box_deltas = box_head(self._pool(features, rois["boxes"], 7))
    s = self.roi_batch_size
    gt_boxes = jnp.take_along_axis(targets["boxes"], rois["matched"][..., None], axis=1)
    box_targets = ROI_BOX_CODER.encode(rois["boxes"].reshape(-1, 4), gt_boxes.reshape(-1, 4))

    # Foreground RoIs come first in the sample: the mask head sees the first quarter.
    fg = math.ceil(s * self.roi_positive_fraction)
    mask_boxes = rois["boxes"][:, :fg]
    mask_logits = mask_head(self._pool(features, mask_boxes, 14))
    mask_targets = jax.vmap(targets_lib.mask_targets)(
      targets["masks"], rois["matched"][:, :fg], mask_boxes
    )
    mask_classes = rois["classes"][:, :fg]
    return {
      "rpn_logits": rpn_logits,
      "rpn_deltas": rpn_deltas,
      "rpn_labels": rpn_labels,
      "rpn_box_targets": rpn_box_targets,
      "roi_logits": cls_logits.reshape(b, s, -1),
      "roi_deltas": box_deltas.reshape(b, s, self.detection_classes, 4),
      "roi_classes": rois["classes"],
      "roi_box_targets": box_targets.reshape(b, s, 4),
      "roi_valid": rois["valid"],
      "mask_logits": mask_logits.reshape(b, fg, *mask_logits.shape[1:]),
      "mask_targets": mask_targets,
      "mask_classes": mask_classes,
      "mask_valid": rois["valid"][:, :fg] & (mask_classes > 0),
    }

  def _detect(self, proposals, proposal_valid, features, heads, image_hw):
    box_head, mask_head = heads
    b, p = proposals.shape[:2]
    cls_logits, box_deltas = box_head(self._pool(features, proposals, 7))
    probs = jax.nn.softmax(cls_logits)[:, 1:].reshape(b, p, self.detection_classes)
    deltas = box_deltas.reshape(b, p, self.detection_classes, 4)
    detections = jax.vmap(lambda *a: self._select(*a, image_hw))(
      proposals, proposal_valid, probs, deltas
    )
    mask_logits = mask_head(self._pool(features, detections["boxes"], 14))
    mask_logits = mask_logits.reshape(b, self.detections, *mask_logits.shape[1:])
    chosen = jnp.take_along_axis(mask_logits, detections["labels"][:, :, None, None, None], -1)
    probs = jax.nn.sigmoid(chosen[..., 0])
    masks = jax.vmap(lambda m, bx: paste_masks(m, bx, height=image_hw[0], width=image_hw[1]))(
      probs, detections["boxes"]
    )
    detections["masks"] = masks & detections["valid"][:, :, None, None]
    return detections

  def _select(self, proposals, proposal_valid, probs, deltas, image_hw):
    """One image's detections: class-specific boxes above the score threshold, NMS per class,
    the best `detections`."""
    p, k = probs.shape
    boxes = ROI_BOX_CODER.decode(deltas.reshape(p * k, 4), jnp.repeat(proposals, k, axis=0))
    boxes = clip_boxes(boxes, *image_hw)
    scores = probs.reshape(p * k)
    labels = jnp.tile(jnp.arange(k, dtype=jnp.int32), p)
    nonempty = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    valid = jnp.repeat(proposal_valid, k) & (scores > self.score_threshold) & nonempty
    # NMS over the best candidates only: its IoU matrix is quadratic in their number.
    candidates = min(p * k, 4 * self.detections + 1000)
    top_scores, top = jax.lax.top_k(jnp.where(valid, scores, -jnp.inf), candidates)
    keep, keep_valid = batched_nms(
      boxes[top],
      top_scores,
      labels[top],
      iou_threshold=self.nms_threshold,
      max_output=self.detections,
      valid=valid[top],
    )
    index = top[keep]
    return {
      "boxes": jnp.where(keep_valid[:, None], boxes[index], 0.0),
      "scores": jnp.where(keep_valid, scores[index], 0.0),
      "labels": jnp.where(keep_valid, labels[index], 0),
      "valid": keep_valid,
    }

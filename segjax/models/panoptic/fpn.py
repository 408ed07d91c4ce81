"""Panoptic FPN (Kirillov et al., 2019): Mask R-CNN plus a semantic segmentation head on its FPN.

The semantic head is detectron2's `SemSegFPNHead`: from each of P2-P5, as many (3x3 conv,
GroupNorm, ReLU, 2x bilinear up-sampling) stages as it takes to reach stride 4, summed, a 1x1
classifier, and bilinear up-sampling to the input size. It predicts every class (detectron2
predicts the stuff classes plus one "thing" class); `segjax.models.panoptic.merge` keeps its stuff
and pastes the detections over it.
"""

import flax.linen as nn
import jax.numpy as jnp

from segjax.models.deeplab import resize_bilinear
from segjax.models.layers import norm_layer
from segjax.models.mask_rcnn import MaskRCNN


class SemanticFPNHead(nn.Module):
  """`pyramid: {"p2": f[B,H/4,W/4,D], ..., "p5": f[B,H/32,W/32,D]}` -> f32[B,H,W,num_classes]."""

  num_classes: int
  features: int = 128
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, pyramid, image_hw, *, train: bool):
    target_hw = pyramid["p2"].shape[1:3]
    total = 0.0
    for level in range(2, 6):
      x = pyramid[f"p{level}"]
      # P_l halves its stride per stage: l - 2 stages reach P2's (P2 itself has one, unscaled).
      for stage in range(max(1, level - 2)):
        x = nn.Conv(
          self.features,
          (3, 3),
          padding=((1, 1), (1, 1)),
          use_bias=False,
          dtype=self.dtype,
          name=f"p{level}_conv{stage}",
        )(x)
        x = norm_layer(
          "group", train=train, dtype=self.dtype, groups=32, name=f"p{level}_norm{stage}"
        )(x)
        x = nn.relu(x)
        if level > 2:
          x = resize_bilinear(x, (x.shape[1] * 2, x.shape[2] * 2))
      total = total + x[:, : target_hw[0], : target_hw[1]]
    logits = nn.Conv(self.num_classes, (1, 1), dtype=self.dtype, name="predictor")(total)
    return resize_bilinear(logits, image_hw).astype(jnp.float32)


class PanopticFPN(MaskRCNN):
  """Mask R-CNN over `things`, with a semantic head over all `num_classes` classes.

  Attributes (besides Mask R-CNN's, whose defaults are detectron2's):
    num_classes: semantic classes C (stuff and things).
    things: the class ids of the thing classes, in the order of the detector's labels.
    semantic_features: width of the semantic head.

  Outputs: Mask R-CNN's (in training its predictions and targets; in inference its detections,
  labels indexing `things`), plus `semantic_logits: f32[B,H,W,C]`.
  """

  things: tuple[int, ...] = ()
  semantic_features: int = 128

  @property
  def detection_classes(self) -> int:
    if not self.things:
      raise ValueError("PanopticFPN needs `things`, the class ids its detector predicts.")
    return len(self.things)

  def extra_outputs(self, pyramid, image_hw, train: bool) -> dict:
    head = SemanticFPNHead(
      self.num_classes, self.semantic_features, dtype=self.dtype, name="semantic_head"
    )
    return {"semantic_logits": head(pyramid, image_hw, train=train)}

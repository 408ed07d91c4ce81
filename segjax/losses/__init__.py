"""Losses: pure, jit-able functions of logits and labels, and their named combination.

`LOSSES` maps the names used in `config.loss.terms` to functions of `(logits, labels, *,
ignore_index, **options)`; `combine` builds one loss from weighted terms.
"""

from segjax.losses.boundary import (
  boundary_loss,
  boundary_weighted_cross_entropy,
  signed_distance_maps,
)
from segjax.losses.class_weights import class_weights_from_counts
from segjax.losses.combine import combine
from segjax.losses.detection import mask_rcnn_losses
from segjax.losses.panoptic import center_loss, hard_pixel_cross_entropy, offset_loss
from segjax.losses.semantic import (
  cross_entropy,
  dice_loss,
  focal_loss,
  focal_tversky_loss,
  lovasz_softmax,
  tversky_loss,
)

LOSSES = {
  "ce": cross_entropy,
  "dice": dice_loss,
  "focal": focal_loss,
  "tversky": tversky_loss,
  "focal_tversky": focal_tversky_loss,
  "lovasz": lovasz_softmax,
  "boundary_ce": boundary_weighted_cross_entropy,
  "boundary": boundary_loss,  # needs `distance_maps`, which the task computes on the host
}

__all__ = [
  "LOSSES",
  "boundary_loss",
  "boundary_weighted_cross_entropy",
  "center_loss",
  "class_weights_from_counts",
  "combine",
  "cross_entropy",
  "dice_loss",
  "focal_loss",
  "focal_tversky_loss",
  "hard_pixel_cross_entropy",
  "lovasz_softmax",
  "mask_rcnn_losses",
  "offset_loss",
  "signed_distance_maps",
  "tversky_loss",
]

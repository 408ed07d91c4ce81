"""The learned parts of Mask R-CNN after the FPN: RPN head, box head, mask head (detectron2's
`StandardRPNHead`, `FastRCNNConvFCHead` with two FC layers, `MaskRCNNConvUpsampleHead`)."""

import flax.linen as nn
import jax.numpy as jnp

from segjax.models.layers import Upsample2x


class RPNHead(nn.Module):
  """Shared over levels: 3x3 conv + ReLU, then per anchor an objectness logit and 4 deltas.

  `x: f[B,H,W,D]` -> `(logits f32[B,H*W*A], deltas f32[B,H*W*A,4])`, ordered (y, x, anchor) like
  `segjax.ops.anchors`.
  """

  num_anchors: int = 3
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    b, h, w, d = x.shape
    x = nn.relu(nn.Conv(d, (3, 3), padding=((1, 1), (1, 1)), dtype=self.dtype, name="conv")(x))
    init = nn.initializers.normal(0.01)
    logits = nn.Conv(self.num_anchors, (1, 1), kernel_init=init, name="objectness")(x)
    deltas = nn.Conv(4 * self.num_anchors, (1, 1), kernel_init=init, name="deltas")(x)
    return (
      logits.reshape(b, h * w * self.num_anchors).astype(jnp.float32),
      deltas.reshape(b, h * w * self.num_anchors, 4).astype(jnp.float32),
    )


class BoxHead(nn.Module):
  """Pooled RoI features -> two FC layers -> class logits (background first) and per-class deltas.

  `x: f[R,7,7,D]` -> `(logits f32[R,K+1], deltas f32[R,K,4])`.
  """

  num_classes: int
  hidden: int = 1024
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    x = x.reshape(x.shape[0], -1)
    x = nn.relu(nn.Dense(self.hidden, dtype=self.dtype, name="fc1")(x))
    x = nn.relu(nn.Dense(self.hidden, dtype=self.dtype, name="fc2")(x))
    logits = nn.Dense(
      self.num_classes + 1, kernel_init=nn.initializers.normal(0.01), name="classifier"
    )(x)
    deltas = nn.Dense(
      4 * self.num_classes, kernel_init=nn.initializers.normal(0.001), name="box_regressor"
    )(x)
    return logits.astype(jnp.float32), deltas.reshape(-1, self.num_classes, 4).astype(jnp.float32)


class MaskHead(nn.Module):
  """Four 3x3 convs + ReLU, 2x learned up-sampling + ReLU, a 1x1 conv to one mask per class.

  `x: f[R,14,14,D]` -> `logits f32[R,28,28,K]`.
  """

  num_classes: int
  features: int = 256
  num_convs: int = 4
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    for i in range(self.num_convs):
      x = nn.Conv(
        self.features, (3, 3), padding=((1, 1), (1, 1)), dtype=self.dtype, name=f"conv{i + 1}"
      )(x)
      x = nn.relu(x)
    x = nn.relu(Upsample2x(self.features, dtype=self.dtype, name="upsample")(x))
    logits = nn.Conv(
      self.num_classes, (1, 1), kernel_init=nn.initializers.normal(0.001), name="predictor"
    )(x)
    return logits.astype(jnp.float32)

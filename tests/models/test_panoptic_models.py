"""Panoptic-DeepLab and Panoptic FPN: outputs, shapes and the layout of their heads."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from segjax.models import PanopticDeepLab, PanopticFPN

TINY_DEEPLAB = {
  "backbone": "resnet18",
  "backbone_width": 8,
  "aspp_features": 16,
  "semantic_features": 16,
  "instance_features": 8,
  "head_features": (16, 8),
}
TINY_FPN = {
  "backbone": "resnet18",
  "backbone_width": 8,
  "fpn_features": 16,
  "anchor_sizes": (8, 16, 32, 64, 128),
  "rpn_pre_nms_topk_test": 50,
  "rpn_post_nms_topk_test": 20,
  "box_head_hidden": 16,
  "mask_head_features": 8,
  "detections": 5,
  "semantic_features": 8,
}


def test_panoptic_deeplab_returns_full_resolution_heads_with_offsets_in_input_pixels():
  model = PanopticDeepLab(num_classes=5, **TINY_DEEPLAB)
  images = jnp.ones((2, 64, 96, 3))
  variables = jax.jit(model.init)(jax.random.key(0), images)
  apply = jax.jit(model.apply)
  out = apply(variables, images)
  assert out["semantic_logits"].shape == (2, 64, 96, 5)
  assert out["center"].shape == (2, 64, 96)
  assert out["offset"].shape == (2, 64, 96, 2)
  assert all(v.dtype == jnp.float32 for v in out.values())
  # Two decoders, each with its own ASPP and projections of c3 and c2.
  params = variables["params"]
  for decoder in ("semantic_decoder", "instance_decoder"):
    assert {"aspp", "project_c3", "project_c2", "fuse_c3", "fuse_c2"} <= set(params[decoder])
  # The instance decoder projects c3 and c2 to 32 and 16 channels (detectron2's instance head).
  assert params["instance_decoder"]["project_c3"]["conv"]["kernel"].shape[-1] == 32

  # The offset predictor works at stride 4: its output, up-sampled, is multiplied by 4.
  predictor = params["offset_predictor"]
  constant = {"kernel": jnp.zeros_like(predictor["kernel"]), "bias": jnp.array([1.0, -0.5])}
  out = apply({**variables, "params": {**params, "offset_predictor": constant}}, images)
  np.testing.assert_allclose(out["offset"][0, 10, 20], [4.0, -2.0], rtol=1e-6)


def test_panoptic_deeplab_refuses_bad_shapes():
  model = PanopticDeepLab(num_classes=3, **TINY_DEEPLAB)
  with pytest.raises(ValueError, match="divisible by 32"):
    jax.eval_shape(model.init, jax.random.key(0), jnp.ones((1, 48, 64, 3)))
  with pytest.raises(ValueError, match="output_stride=32"):
    jax.eval_shape(
      PanopticDeepLab(num_classes=3, output_stride=32, **TINY_DEEPLAB).init,
      jax.random.key(0),
      jnp.ones((1, 64, 64, 3)),
    )


def test_panoptic_fpn_detects_things_and_segments_every_class():
  model = PanopticFPN(num_classes=7, things=(4, 5, 6), **TINY_FPN)
  images = jnp.ones((2, 64, 64, 3))
  variables = jax.jit(model.init)(jax.random.key(0), images)
  out = jax.jit(model.apply)(variables, images)
  assert out["semantic_logits"].shape == (2, 64, 64, 7)
  assert out["masks"].shape == (2, 5, 64, 64) and out["labels"].shape == (2, 5)
  params = variables["params"]
  # The box head scores background and the three things; the mask head one mask per thing.
  assert params["box_head"]["classifier"]["kernel"].shape[-1] == 4
  assert params["mask_head"]["predictor"]["kernel"].shape[-1] == 3
  # detectron2's SemSegFPNHead: 1, 1, 2 and 3 conv stages on P2..P5 to reach stride 4.
  convs = {name for name in params["semantic_head"] if "_conv" in name}
  assert convs == {"p2_conv0", "p3_conv0", "p4_conv0", "p4_conv1", "p5_conv0", "p5_conv1",
                   "p5_conv2"}  # fmt: skip


def test_panoptic_fpn_needs_its_thing_classes():
  with pytest.raises(ValueError, match="things"):
    jax.eval_shape(
      PanopticFPN(num_classes=7, **TINY_FPN).init, jax.random.key(0), jnp.ones((1, 64, 64, 3))
    )

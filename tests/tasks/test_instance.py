"""The instance task: targets from panoptic maps, detectron2's losses, the instance map."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from segjax.config import base_config
from segjax.data import Dataset
from segjax.tasks.instance import InstanceTask, instances_from_panoptic


def _task(max_instances=4):
  config = base_config()
  config.task, config.data.max_instances = "instance", max_instances
  dataset = Dataset(None, class_names=("sky", "car", "person"), things=(1, 2), stuff=(0,))
  return InstanceTask(config, dataset)


def test_instances_from_panoptic_boxes_labels_and_order():
  panoptic = np.zeros((6, 8), np.int32)  # sky (stuff, instance 0)
  panoptic[1:3, 2:5] = 1001  # car 1: rows 1-2, cols 2-4
  panoptic[4, 6] = 2001  # person 1: a single pixel
  panoptic[0:6, 0:2] = 2002  # person 2: the largest
  panoptic[5, 7] = 255 * 1000  # void
  out = instances_from_panoptic(panoptic, (1, 2), 4)
  assert out["gt_valid"].tolist() == [True, True, True, False]
  # Largest first: person 2 (12 px), car 1 (6 px), person 1 (1 px); labels index `things`.
  assert out["gt_labels"][:3].tolist() == [1, 0, 1]
  np.testing.assert_array_equal(out["gt_boxes"][:3], [[0, 0, 2, 6], [2, 1, 5, 3], [6, 4, 7, 5]])
  np.testing.assert_array_equal(out["gt_masks"][1], panoptic == 1001)
  assert not out["gt_masks"][3].any()
  # Truncated to the largest.
  assert instances_from_panoptic(panoptic, (1, 2), 1)["gt_labels"].tolist() == [1]


def _outputs(rng, b=2, anchors=10, rois=6, fg=3, k=2, m=4):
  return {
    "rpn_logits": rng.normal(size=(b, anchors)),
    "rpn_deltas": rng.normal(size=(b, anchors, 4)),
    "rpn_labels": rng.choice([-1, 0, 1], size=(b, anchors)),
    "rpn_box_targets": rng.normal(size=(b, anchors, 4)),
    "roi_logits": rng.normal(size=(b, rois, k + 1)),
    "roi_deltas": rng.normal(size=(b, rois, k, 4)),
    "roi_classes": rng.integers(0, k + 1, size=(b, rois)),
    "roi_box_targets": rng.normal(size=(b, rois, 4)),
    "roi_valid": rng.random((b, rois)) < 0.8,
    "mask_logits": rng.normal(size=(b, fg, m, m, k)),
    "mask_targets": (rng.random((b, fg, m, m)) < 0.5).astype(np.float32),
    "mask_classes": rng.integers(1, k + 1, size=(b, fg)),
    "mask_valid": rng.random((b, fg)) < 0.7,
  }


def _reference_losses(o):
  """detectron2's Mask R-CNN losses in plain numpy loops."""

  def bce(x, t):
    return max(x, 0) - x * t + np.log1p(np.exp(-abs(x)))

  b, n = o["rpn_labels"].shape
  sampled = [(i, a) for i in range(b) for a in range(n) if o["rpn_labels"][i, a] >= 0]
  rpn_cls = sum(bce(o["rpn_logits"][i, a], o["rpn_labels"][i, a] == 1) for i, a in sampled)
  rpn_box = sum(
    np.abs(o["rpn_deltas"][i, a] - o["rpn_box_targets"][i, a]).sum()
    for i, a in sampled
    if o["rpn_labels"][i, a] == 1
  )
  rois = [(i, r) for i in range(b) for r in range(o["roi_valid"].shape[1]) if o["roi_valid"][i, r]]
  cls = box = 0.0
  for i, r in rois:
    logits, c = o["roi_logits"][i, r], o["roi_classes"][i, r]
    cls += np.log(np.exp(logits - logits.max()).sum()) + logits.max() - logits[c]
    if c > 0:
      box += np.abs(o["roi_deltas"][i, r, c - 1] - o["roi_box_targets"][i, r]).sum()
  masks = []
  for i in range(b):
    for r in range(o["mask_valid"].shape[1]):
      if o["mask_valid"][i, r]:
        logits = o["mask_logits"][i, r, :, :, o["mask_classes"][i, r] - 1]
        per_pixel = np.vectorize(bce)(logits, o["mask_targets"][i, r])
        masks.append(per_pixel.mean())
  return {
    "loss_rpn_cls": rpn_cls / len(sampled),
    "loss_rpn_box": rpn_box / len(sampled),
    "loss_cls": cls / len(rois),
    "loss_box": box / len(rois),
    "loss_mask": np.mean(masks),
  }


@pytest.mark.parametrize("seed", [0, 1])
def test_losses_match_a_numpy_reference(seed):
  outputs = _outputs(np.random.default_rng(seed))
  total, parts = _task().loss(jax.tree.map(jnp.asarray, outputs), {}, 0)
  expected = _reference_losses(outputs)
  for name, value in expected.items():
    assert float(parts[name]) == pytest.approx(value, rel=1e-5), name
  assert float(total) == pytest.approx(sum(expected.values()), rel=1e-5)


def test_mask_loss_reads_only_the_ground_truth_class():
  outputs = _outputs(np.random.default_rng(3))
  task = _task()
  base = float(task.loss(jax.tree.map(jnp.asarray, outputs), {}, 0)[1]["loss_mask"])
  other = dict(outputs)
  logits = outputs["mask_logits"].copy()
  gt_channel = (outputs["mask_classes"] - 1)[:, :, None, None, None] == np.arange(2)
  other["mask_logits"] = np.where(gt_channel, logits, logits + 50.0)
  changed = float(task.loss(jax.tree.map(jnp.asarray, other), {}, 0)[1]["loss_mask"])
  assert changed == pytest.approx(base, rel=1e-6)
  other["mask_logits"] = np.where(gt_channel, logits + 1.0, logits)
  assert float(task.loss(jax.tree.map(jnp.asarray, other), {}, 0)[1]["loss_mask"]) != base


def test_padded_ground_truth_with_infinite_targets_keeps_losses_finite():
  outputs = _outputs(np.random.default_rng(4))
  outputs["rpn_box_targets"][outputs["rpn_labels"] != 1] = -np.inf
  _, parts = _task().loss(jax.tree.map(jnp.asarray, outputs), {}, 0)
  assert all(np.isfinite(float(v)) for v in parts.values())


def test_instance_map_paints_higher_scores_on_top():
  masks = np.zeros((1, 3, 4, 4), bool)
  masks[0, 0, :2, :2] = True  # rank 0, person
  masks[0, 1, 1:3, 1:3] = True  # rank 1, car, under rank 0 where they overlap
  masks[0, 2] = True  # invalid: never drawn
  outputs = {
    "masks": jnp.asarray(masks),
    "labels": jnp.asarray([[1, 0, 0]]),
    "valid": jnp.asarray([[True, True, False]]),
    "scores": jnp.asarray([[0.9, 0.6, 0.95]]),
  }
  ids = np.asarray(_task().predict(outputs))[0]
  expected = np.zeros((4, 4), np.int32)
  expected[1:3, 1:3] = 1 * 1000 + 2
  expected[:2, :2] = 2 * 1000 + 1
  np.testing.assert_array_equal(ids, expected)
  # Below the display threshold (0.5) a detection is left out of the map.
  low = dict(outputs, scores=jnp.asarray([[0.9, 0.3, 0.95]]))
  expected[expected == 1002] = 0
  np.testing.assert_array_equal(np.asarray(_task().predict(low))[0], expected)

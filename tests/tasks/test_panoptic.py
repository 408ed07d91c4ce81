"""The panoptic task end to end on the host side: targets, perfect heads through each branch's
post-processing, PQ from the accumulated statistics, and the exported files."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from segjax.config import base_config
from segjax.data import Dataset
from segjax.data.coco_panoptic import read_predictions, rgb_to_id
from segjax.errors import InputError
from segjax.tasks.panoptic import PanopticTask

NAMES = ("sky", "road", "car", "person")  # stuff 0, 1; things 2, 3
VOID = 255 * 1000


def _task(model="panoptic_deeplab", **dataset_kwargs):
  config = base_config()
  config.task, config.model.name = "panoptic", model
  config.panoptic.stuff_area = 0
  config.panoptic.sigma = 2.0
  dataset = Dataset(None, class_names=NAMES, things=(2, 3), stuff=(0, 1), **dataset_kwargs)
  return PanopticTask(config, dataset)


def _scene():
  """i32[2,32,32]: sky above road, two cars and a person, a void strip in the first image."""
  panoptic = np.zeros((2, 32, 32), np.int32)
  panoptic[:, 16:] = 1000
  panoptic[0, 18:24, 2:10] = 2001
  panoptic[0, 18:24, 12:20] = 2002
  panoptic[0, 4:14, 24:28] = 3001
  panoptic[0, :, 30:] = VOID
  panoptic[1, 20:30, 5:25] = 2001
  return panoptic


def _evaluate(task, outputs, truth):
  batch = {"panoptic": jnp.asarray(truth), "valid": jnp.ones(truth.shape[0], bool)}
  stats = jax.jit(task.eval_stats)(outputs, batch)
  return task.scores(task.accumulate(None, stats)), stats


def test_perfect_panoptic_deeplab_heads_score_pq_one():
  task = _task()
  truth = _scene()
  targets = [task.prepare({"panoptic": p}) for p in truth]
  semantic = np.stack([t["semantic"] for t in targets]).astype(np.int64)
  outputs = {
    "semantic_logits": jnp.asarray(20.0 * np.eye(4)[np.where(semantic == 255, 0, semantic)]),
    "center": jnp.asarray(np.stack([t["center"] for t in targets])),
    "offset": jnp.asarray(np.stack([t["offset"] for t in targets])),
  }
  scores, stats = _evaluate(task, outputs, truth)
  assert scores["pq"] == pytest.approx(1.0) and scores["n"] == 4
  assert scores["pq_things"] == scores["pq_stuff"] == pytest.approx(1.0)
  # The semantic head's mIoU reads the truth's classes, void left out.
  assert scores["miou"] == pytest.approx(1.0)
  assert stats["panoptic"].shape == truth.shape
  summary = task.summary(scores)
  assert "things" in summary and "person" in summary and "mIoU 1.0000" in summary


def test_perfect_detections_and_stuff_through_the_panoptic_fpn_merge_score_pq_one():
  task = _task("panoptic_fpn")
  truth = _scene()
  masks = np.zeros((2, 5, 32, 32), bool)
  labels = np.zeros((2, 5), np.int32)
  valid = np.zeros((2, 5), bool)
  for b, image in enumerate(truth):
    for slot, segment in enumerate(i for i in np.unique(image) if i % 1000 and i != VOID):
      masks[b, slot], labels[b, slot], valid[b, slot] = image == segment, segment // 1000 - 2, True
  semantic = np.where(truth == VOID, 0, truth // 1000)
  outputs = {
    "masks": jnp.asarray(masks),
    "scores": jnp.asarray(np.where(valid, 0.9, 0.0), jnp.float32),
    "labels": jnp.asarray(labels),
    "valid": jnp.asarray(valid),
    "semantic_logits": jnp.asarray(20.0 * np.eye(4)[semantic]),
  }
  scores, _ = _evaluate(task, outputs, truth)
  # Sky predicted over the void strip is more than half on void: not a false positive.
  assert scores["pq"] == pytest.approx(1.0) and scores["per_class_pq"]["person"] == 1.0


def test_missed_instances_lower_recognition_not_segmentation_quality():
  task = _task()
  truth = _scene()[1:]
  prediction = np.where(truth == 2001, 1000, truth)  # the car predicted as road
  stats = {
    "panoptic": prediction,
    "truth": truth,
    "confusion_matrix": np.zeros((4, 4), np.int64),
  }
  scores = task.scores(task.accumulate(None, stats))
  # sky: TP at IoU 1. road: the truth's 16x32 rows less the 10x20 car (312 px) inside the
  # prediction's 512, a TP at IoU 312 / 512. car: a FN. PQ averages the three classes.
  assert scores["per_class_rq"]["car"] == 0.0 and scores["per_class_sq"]["sky"] == 1.0
  assert scores["per_class_sq"]["road"] == pytest.approx(312 / 512)
  assert scores["pq"] == pytest.approx((1.0 + 312 / 512 + 0.0) / 3)


def test_predictions_export_with_the_data_sets_category_ids(tmp_path):
  task = _task(category_ids=(17, 21, 3, 1))
  truth = _scene()
  task.write_predictions(tmp_path, [("first", truth[0]), ("second", truth[1])])
  document = json.loads((tmp_path / "panoptic.json").read_text())
  assert [c["id"] for c in document["categories"]] == [17, 21, 3, 1]
  assert [c["isthing"] for c in document["categories"]] == [0, 0, 1, 1]
  png, segments = read_predictions(tmp_path / "panoptic.json")["first"]
  ids = rgb_to_id(np.asarray(Image.open(png)))
  by_id = {s["id"]: s["category_id"] for s in segments}
  # Each segment's pixels are those of one truth id, labelled with its class's category id.
  for segment_id, category in by_id.items():
    classes = np.unique(truth[0][ids == segment_id] // 1000)
    assert classes.size == 1 and (17, 21, 3, 1)[classes[0]] == category
  assert (ids == 0).sum() == (truth[0] == VOID).sum()


def test_a_data_set_without_things_or_a_non_panoptic_model_is_refused():
  config = base_config()
  config.task, config.model.name = "panoptic", "panoptic_deeplab"
  with pytest.raises(InputError, match="thing classes"):
    PanopticTask(config, Dataset(None, class_names=("sky",), stuff=(0,)))
  config.model.name = "unet"
  with pytest.raises(InputError, match="not a panoptic model"):
    PanopticTask(config, Dataset(None, class_names=NAMES, things=(2, 3), stuff=(0, 1)))

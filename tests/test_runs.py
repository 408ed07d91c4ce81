"""segjax.runs against independent references: the JSON lines, numpy counts, the evaluation."""

import json
import math
import pathlib

import numpy as np
import pytest

from segjax import runs
from segjax.data import DATASETS
from segjax.data.transforms import resize
from segjax.metrics import semantic_scores
from segjax.train.loop import load_config

pytestmark = pytest.mark.slow

CLASSES = ("sky", "road", "building", "pole", "car", "person", "sign")


@pytest.fixture(scope="module")
def lines(tiny_run_workdir) -> list[dict]:
  text = (pathlib.Path(tiny_run_workdir) / "metrics.jsonl").read_text()
  return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def predicted(tiny_run_workdir) -> dict:
  return runs.per_image(tiny_run_workdir)


def numpy_confusion(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
  """Counts (truth, prediction) pairs one pixel at a time; void (255) is skipped."""
  confmat = np.zeros((num_classes, num_classes), np.int64)
  keep = labels < num_classes
  np.add.at(confmat, (labels[keep].astype(np.int64), predictions[keep]), 1)
  return confmat


def numpy_miou(labels: np.ndarray, prediction: np.ndarray, num_classes: int) -> float:
  """Mean IoU over the classes present in one image's (non-void) truth or prediction."""
  valid = labels < num_classes
  ious = []
  for c in range(num_classes):
    truth, pred = (labels == c) & valid, (prediction == c) & valid
    union = np.sum(truth | pred)
    if union:
      ious.append(np.sum(truth & pred) / union)
  return float(np.mean(ious)) if ious else math.nan


def resized(source, index: int, size_hw: tuple[int, int]) -> dict:
  """Example `index` of `source` as evaluation sees it: image and labels at `size_hw`."""
  example = source[index]
  return resize({"image": example["image"], "semantic": example["semantic"]}, size_hw)


def same(a, b) -> bool:
  """Equal values, JSON null and NaN counting as the same."""
  nan = lambda x: x is None or (isinstance(x, float) and math.isnan(x))
  return (nan(a) and nan(b)) or a == b


def test_metrics_has_a_row_per_json_line(tiny_run_workdir, lines):
  frame = runs.metrics(tiny_run_workdir)
  assert len(frame) == len(lines) == 3  # train at steps 2 and 4, validation at step 4
  assert list(frame.columns[:2]) == ["step", "split"]
  expected_columns = set()
  for row, line in zip(frame.to_dict("records"), lines, strict=True):
    flat = {}
    for key, value in line.items():
      if isinstance(value, dict):
        flat.update({f"{key}/{name}": v for name, v in value.items()})
      else:
        flat[key] = value
    expected_columns |= set(flat)
    assert {k: v for k, v in row.items() if not same(v, None)} == {
      k: v for k, v in flat.items() if not same(v, None)
    }
  assert set(frame.columns) == expected_columns
  assert "per_class_iou/car" in expected_columns


def test_curves_are_the_numbers_in_long_form(tiny_run_workdir, lines):
  frame = runs.curves([tiny_run_workdir, tiny_run_workdir], names=["a", "b"])
  assert list(frame.columns) == ["run", "step", "split", "metric", "value"]
  expected = sorted(
    (line["step"], line["split"], key, value)
    for line in lines
    for key, value in line.items()
    if isinstance(value, int | float) and not isinstance(value, bool) and key != "step"
  )
  for run in ("a", "b"):
    rows = frame[(frame["run"] == run) & ~frame["metric"].str.contains("/")]
    assert sorted(rows[["step", "split", "metric", "value"]].itertuples(index=False)) == expected
  validation = frame[(frame["run"] == "a") & (frame["split"] == "validation")]
  per_class = validation.set_index("metric")["value"].filter(like="per_class_iou/")
  assert dict(per_class.rename(lambda k: k.split("/")[1])) == lines[2]["per_class_iou"]
  assert set(runs.curves(tiny_run_workdir)["run"]) == {pathlib.Path(tiny_run_workdir).name}


def test_best_and_per_class_read_the_best_evaluation(tiny_run_workdir, lines):
  best = runs.best(tiny_run_workdir)
  assert (best["step"], best["split"], best["miou"]) == (4, "validation", lines[2]["miou"])
  assert "loss" not in best.index  # a train-only column
  table = runs.per_class(best)
  assert tuple(table.index) == CLASSES
  assert set(table.columns) == {"iou", "accuracy", "boundary_iou"}
  assert table["iou"].to_dict() == lines[2]["per_class_iou"]
  assert runs.summary(tiny_run_workdir)["steps"] == 4


def test_per_image_holds_the_split_in_order(tiny_run_workdir, predicted):
  config = load_config(tiny_run_workdir)
  source = DATASETS[config.data.name](config.data, config.eval.split).source
  n, (h, w) = len(source), tuple(config.data.image_size)
  assert predicted["images"].shape == (n, h, w, 3) and predicted["images"].dtype == np.uint8
  assert predicted["labels"].shape == (n, h, w) and predicted["labels"].dtype == np.uint8
  assert predicted["predictions"].shape == (n, h, w)
  assert predicted["predictions"].dtype == np.int32
  assert predicted["miou"].shape == (n,) and predicted["miou"].dtype == np.float64
  assert predicted["step"] == 4 and tuple(predicted["class_names"]) == CLASSES
  for i in (0, n - 1):
    example = resized(source, i, (h, w))
    np.testing.assert_array_equal(predicted["images"][i], example["image"])
    np.testing.assert_array_equal(predicted["labels"][i], example["semantic"])


def test_confusion_is_the_sum_of_per_image_counts(tiny_run_workdir, predicted):
  confmat, class_names = runs.confusion(tiny_run_workdir)
  assert confmat.dtype == np.int64 and tuple(class_names) == CLASSES
  reference = sum(
    numpy_confusion(labels, pred, len(CLASSES))
    for labels, pred in zip(predicted["labels"], predicted["predictions"], strict=True)
  )
  np.testing.assert_array_equal(confmat, reference)
  np.testing.assert_array_equal(predicted["confmat"], reference)


def test_confusion_scores_what_the_run_evaluated(tiny_run_workdir, lines):
  # The tiny run evaluates once, at step 4, which is both its best and its latest checkpoint.
  (evaluation,) = [line for line in lines if line["split"] == "validation"]
  for checkpoint in ("best", "latest", 4):
    scores = semantic_scores(runs.confusion(tiny_run_workdir, checkpoint=checkpoint)[0])
    assert scores["miou"] == pytest.approx(evaluation["miou"], rel=1e-12)
    per_class = dict(zip(CLASSES, scores["per_class_iou"], strict=True))
    assert per_class == pytest.approx(evaluation["per_class_iou"], rel=1e-12)
    assert scores["pixel_accuracy"] == pytest.approx(evaluation["pixel_accuracy"], rel=1e-12)


def test_per_image_miou_matches_numpy(predicted):
  reference = [
    numpy_miou(labels, pred, len(CLASSES))
    for labels, pred in zip(predicted["labels"], predicted["predictions"], strict=True)
  ]
  np.testing.assert_allclose(predicted["miou"], reference, rtol=1e-12)


def test_limit_split_and_checkpoint(tiny_run_workdir, predicted):
  first = runs.per_image(tiny_run_workdir, checkpoint="latest", limit=5)
  assert len(first["miou"]) == 5 and first["step"] == 4
  np.testing.assert_array_equal(first["predictions"], predicted["predictions"][:5])
  np.testing.assert_array_equal(first["miou"], predicted["miou"][:5])

  config = load_config(tiny_run_workdir)
  train = runs.per_image(tiny_run_workdir, split="train", checkpoint="4", limit=3)
  source = DATASETS[config.data.name](config.data, "train").source
  expected = [resized(source, i, tuple(config.data.image_size))["semantic"] for i in range(3)]
  np.testing.assert_array_equal(train["labels"], expected)

"""Both panoptic models through the CLI and loop of every model: train, evaluate (PQ), predict
(COCO panoptic files)."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from segjax.data.coco_panoptic import read_predictions, rgb_to_id

REPO = pathlib.Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "segjax.main"]


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["panoptic_deeplab_shapes", "panoptic_fpn_shapes"])
def test_tiny_panoptic_model_trains_evaluates_and_predicts_through_the_cli(
  experiment, tfds_dir, tmp_path
):
  workdir = tmp_path / "run"
  config = [
    f"--config={REPO}/experiments/{experiment}.py:tiny",
    f"--config.data.tfds_dir={tfds_dir}",
    "--config.train.steps=30",
    "--config.train.log_every=10",
    "--config.train.eval_every=30",
  ]
  subprocess.run([*CLI, "train", *config, f"--workdir={workdir}"], check=True, cwd=tmp_path)
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  losses = [r["loss"] for r in records if r["split"] == "train"]
  assert len(losses) == 3 and losses[-1] < losses[0], losses
  evaluation = [r for r in records if r["split"] == "validation"][-1]
  for key in ("pq", "sq", "rq", "pq_things", "pq_stuff", "miou"):
    assert 0 <= evaluation[key] <= 1, (key, evaluation[key])
  assert set(evaluation["per_class_pq"]) == {
    "sky", "road", "building", "pole", "car", "person", "sign"
  }  # fmt: skip

  result = subprocess.run(
    [*CLI, "eval", f"--workdir={workdir}", "--checkpoint=latest"],
    check=True,
    capture_output=True,
    text=True,
  )
  assert "PQ" in result.stdout and "things" in result.stdout

  images, out = tmp_path / "images", tmp_path / "out"
  images.mkdir()
  rng = np.random.default_rng(0)
  Image.fromarray(rng.integers(0, 255, (50, 70, 3), dtype=np.uint8)).save(images / "a.png")
  subprocess.run(
    [*CLI, "predict", f"--workdir={workdir}", f"--input={images}", f"--output={out}"], check=True
  )
  assert np.asarray(Image.open(out / "a_overlay.png")).shape == (50, 70, 3)
  png, segments = read_predictions(out / "panoptic.json")["a"]
  ids = rgb_to_id(np.asarray(Image.open(png)))
  assert ids.shape == (50, 70)
  assert set(np.unique(ids)) - {0} == {s["id"] for s in segments}
  categories = json.loads((out / "panoptic.json").read_text())["categories"]
  assert [c["name"] for c in categories][:2] == ["sky", "road"]

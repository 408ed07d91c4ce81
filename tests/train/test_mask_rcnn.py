"""Mask R-CNN through the CLI and loop of every model: train, evaluate (COCO AP), predict."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

REPO = pathlib.Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "segjax.main"]


@pytest.mark.slow
def test_tiny_mask_rcnn_trains_evaluates_and_predicts_through_the_cli(tfds_dir, tmp_path):
  workdir = tmp_path / "run"
  config = [
    f"--config={REPO}/experiments/mask_rcnn_r50_fpn_shapes.py:tiny",
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
  assert 0 <= evaluation["mask_ap"] <= 1 and 0 <= evaluation["mask_ap50"] <= 1
  assert set(evaluation["per_class_mask_ap"]) == {"car", "person", "sign"}

  result = subprocess.run(
    [*CLI, "eval", f"--workdir={workdir}", "--checkpoint=latest"],
    check=True,
    capture_output=True,
    text=True,
  )
  assert "mask AP" in result.stdout

  images, out = tmp_path / "images", tmp_path / "out"
  images.mkdir()
  rng = np.random.default_rng(0)
  Image.fromarray(rng.integers(0, 255, (50, 70, 3), dtype=np.uint8)).save(images / "a.png")
  subprocess.run(
    [*CLI, "predict", f"--workdir={workdir}", f"--input={images}", f"--output={out}"], check=True
  )
  labels = np.asarray(Image.open(out / "a_labels.png"))
  assert labels.shape == (50, 70)
  assert np.asarray(Image.open(out / "a_overlay.png")).shape == (50, 70, 3)

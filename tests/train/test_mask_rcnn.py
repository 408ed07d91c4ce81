"""Mask R-CNN through the CLI and loop of every model: train, evaluate (COCO AP), predict."""

import numpy as np
import pytest
from PIL import Image


@pytest.mark.slow
def test_tiny_mask_rcnn_trains_evaluates_and_predicts_through_the_cli(cli, cli_train, tmp_path):
  workdir, records = cli_train("mask_rcnn_r50_fpn_shapes", 30)
  losses = [r["loss"] for r in records if r["split"] == "train"]
  assert len(losses) == 3 and losses[-1] < losses[0], losses
  evaluation = [r for r in records if r["split"] == "validation"][-1]
  assert 0 <= evaluation["mask_ap"] <= 1 and 0 <= evaluation["mask_ap50"] <= 1
  assert set(evaluation["per_class_mask_ap"]) == {"car", "person", "sign"}

  result = cli("eval", f"--workdir={workdir}", "--checkpoint=latest")
  assert "mask AP" in result.stdout

  images, out = tmp_path / "images", tmp_path / "out"
  images.mkdir()
  rng = np.random.default_rng(0)
  Image.fromarray(rng.integers(0, 255, (50, 70, 3), dtype=np.uint8)).save(images / "a.png")
  cli("predict", f"--workdir={workdir}", f"--input={images}", f"--output={out}")
  labels = np.asarray(Image.open(out / "a_labels.png"))
  assert labels.shape == (50, 70)
  assert np.asarray(Image.open(out / "a_overlay.png")).shape == (50, 70, 3)

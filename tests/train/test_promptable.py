"""The interactive SAM through the CLI and loop of every model: train, evaluate, predict."""

import numpy as np
import pytest
from PIL import Image


@pytest.mark.slow
def test_tiny_interactive_sam_trains_evaluates_and_predicts_through_the_cli(
  cli, cli_train, tmp_path
):
  workdir, records = cli_train("sam_tiny_shapes", 30)
  losses = [r["loss"] for r in records if r["split"] == "train"]
  assert len(losses) == 3 and losses[-1] < losses[0], losses
  evaluation = [r for r in records if r["split"] == "validation"][-1]
  for key in ("miou@1", "miou@3", "miou@5"):
    assert 0 <= evaluation[key] <= 1, (key, evaluation[key])
  # NoC counts clicks up to the curve's length (`eval_clicks`, 5 in the tiny variant).
  assert 1 <= evaluation["noc@85"] <= 5 and evaluation["objects"] > 0

  result = cli("eval", f"--workdir={workdir}", "--checkpoint=latest")
  assert "noc@85" in result.stdout

  images, out = tmp_path / "images", tmp_path / "out"
  images.mkdir()
  rng = np.random.default_rng(0)
  Image.fromarray(rng.integers(0, 255, (50, 70, 3), dtype=np.uint8)).save(images / "a.png")
  cli("predict", f"--workdir={workdir}", f"--input={images}", f"--output={out}")
  assert np.asarray(Image.open(out / "a_labels.png")).shape == (50, 70)
  assert np.asarray(Image.open(out / "a_overlay.png")).shape == (50, 70, 3)

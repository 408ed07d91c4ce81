"""Both panoptic models through the CLI and loop of every model: train, evaluate (PQ), predict
(COCO panoptic files)."""

import json

import numpy as np
import pytest
from PIL import Image

from segjax.data.coco_panoptic import read_predictions, rgb_to_id


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["panoptic_deeplab_shapes", "panoptic_fpn_shapes"])
def test_tiny_panoptic_model_trains_evaluates_and_predicts_through_the_cli(
  experiment, cli, cli_train, tmp_path
):
  workdir, records = cli_train(experiment, 30)
  losses = [r["loss"] for r in records if r["split"] == "train"]
  assert len(losses) == 3 and losses[-1] < losses[0], losses
  evaluation = [r for r in records if r["split"] == "validation"][-1]
  for key in ("pq", "sq", "rq", "pq_things", "pq_stuff", "miou"):
    assert 0 <= evaluation[key] <= 1, (key, evaluation[key])
  names = {"sky", "road", "building", "pole", "car", "person", "sign"}
  assert set(evaluation["per_class_pq"]) == names

  result = cli("eval", f"--workdir={workdir}", "--checkpoint=latest")
  assert "PQ" in result.stdout and "things" in result.stdout

  images, out = tmp_path / "images", tmp_path / "out"
  images.mkdir()
  rng = np.random.default_rng(0)
  Image.fromarray(rng.integers(0, 255, (50, 70, 3), dtype=np.uint8)).save(images / "a.png")
  cli("predict", f"--workdir={workdir}", f"--input={images}", f"--output={out}")
  assert np.asarray(Image.open(out / "a_overlay.png")).shape == (50, 70, 3)
  png, segments = read_predictions(out / "panoptic.json")["a"]
  ids = rgb_to_id(np.asarray(Image.open(png)))
  assert ids.shape == (50, 70)
  assert set(np.unique(ids)) - {0} == {s["id"] for s in segments}
  categories = json.loads((out / "panoptic.json").read_text())["categories"]
  assert [c["name"] for c in categories] == [
    "sky", "road", "building", "pole", "car", "person", "sign"
  ]  # fmt: skip

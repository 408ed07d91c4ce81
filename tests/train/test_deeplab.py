"""DeepLabv3+ through the CLI and loop of every model; pretrained backbones from a user's file."""

import json
import pathlib

import jax
import numpy as np
import pytest

from segjax.errors import InputError
from segjax.train.loop import build, init_state

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_tiny_deeplabv3plus_trains_evaluates_and_predicts_through_the_cli(cli, cli_train):
  workdir, records = cli_train("deeplabv3plus_r50_shapes", 24)
  losses = [r["loss"] for r in records if r["split"] == "train"]
  assert len(losses) == 3 and losses[-1] < losses[0], losses

  def evaluate(*flags):
    return cli("eval", f"--workdir={workdir}", "--checkpoint=latest", *flags).stdout

  assert "whole" in evaluate()
  # A window as large as the eval image: one window, the same function as whole-image inference.
  assert "slide_flip" in evaluate("--mode=slide", "--flip")
  whole = json.loads((workdir / "eval/validation_step24.json").read_text())
  flipped = json.loads((workdir / "eval/validation_step24_slide_flip.json").read_text())
  assert whole["inference"] == "whole" and flipped["inference"] == "slide_flip"
  assert 0 <= flipped["miou"] <= 1 and flipped["miou"] != whole["miou"]


def test_pretrained_backbone_is_loaded_from_a_users_file(experiment, tfds_dir, tmp_path):
  torch = pytest.importorskip("torch", reason="torch writes the reference .pth file")
  import torch_resnet

  reference = torch_resnet.randomize(torch_resnet.ResNet(18), seed=5)
  path = tmp_path / "resnet18.pth"
  torch.save(reference.state_dict(), path)

  config = experiment("deeplabv3plus_r50_shapes").get_config("tiny")
  config.data.tfds_dir = tfds_dir
  config.model.backbone.pretrained = str(path)
  config.model.kwargs = {"aspp_features": 16, "low_level_features": 8, "decoder_features": 16}
  from segjax.data import DATASETS

  exp = build(config, DATASETS["shapes"](config.data, "train"))
  state = init_state(exp, jax.random.key(0))
  kernel = np.asarray(state.params["backbone"]["layer3_1"]["conv2"]["kernel"])
  expected = reference.layer3[1].conv2.weight.detach().numpy().transpose(2, 3, 1, 0)
  np.testing.assert_array_equal(kernel, expected)
  mean = np.asarray(state.batch_stats["backbone"]["bn1"]["mean"])
  np.testing.assert_array_equal(mean, reference.bn1.running_mean.numpy())

  # A file of another ResNet variant is refused with the option to change.
  config.model.backbone.deep_stem = True
  exp = build(config, exp.task.dataset)
  with pytest.raises(InputError, match=r"deep_stem=False"):
    init_state(exp, jax.random.key(0))


def test_pretrained_path_must_exist(experiment, tmp_path):
  from segjax.config import validate

  config = experiment("deeplabv3plus_r50_shapes").get_config("tiny")
  config.model.backbone.pretrained = str(tmp_path / "missing.pth")
  with pytest.raises(InputError, match=r"missing\.pth.*is not a file"):
    validate(config)


@pytest.mark.slow
def test_cityscapes_recipe_runs_scaled_down_with_sliding_window_eval(experiment, tmp_path):
  """The paper recipe with its sizes scaled down 16x: crops, full-resolution sliding windows."""
  from segjax.train.loop import train

  config = experiment("deeplabv3plus_r50_cityscapes").get_config()
  from fake_cityscapes import write_cityscapes

  root = tmp_path / "cityscapes"
  write_cityscapes(root, "train", ("aachen", "bochum", "bremen", "cologne"), (48, 96), True)
  write_cityscapes(root, "val", ("frankfurt", "lindau"), (48, 96), True)
  config.data.root = str(root)
  config.data.image_size, config.data.batch_size, config.data.num_threads = (33, 33), 2, 1
  config.eval.image_size, config.eval.window, config.eval.stride = (48, 96), (33, 33), (22, 22)
  config.eval.batch_size = 2
  config.model.dtype = "float32"
  config.model.backbone.name = "resnet18"
  config.model.kwargs = {"backbone_width": 8, "aspp_features": 8, "decoder_features": 8}
  config.train.steps = config.train.eval_every = config.train.checkpoint_every = 2
  scores = train(config, str(tmp_path / "run"))
  assert len(scores["per_class_iou"]) == 19 and 0 <= scores["miou"] <= 1

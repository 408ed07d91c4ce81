"""Config validation: every experiment passes; a bad key or value fails at once, by name."""

import pathlib

import ml_collections
import pytest
from experiment_files import load_experiment

from segjax.config import base_config, validate
from segjax.errors import InputError

EXPERIMENTS = sorted((pathlib.Path(__file__).resolve().parents[1] / "experiments").glob("*.py"))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_every_experiment_and_variant_validates(path):
  module = load_experiment(path.stem)
  for arg in module.VARIANTS:
    validate(module.get_config(arg))
  with pytest.raises(ValueError, match="Unknown variant"):
    module.get_config("no-such-variant")


def test_misspelt_key_suggests_the_closest():
  config = base_config()
  config.train.chekpoint_every = 5
  with pytest.raises(
    InputError, match=r'config.train.chekpoint_every is not a known key.*"train.checkpoint_every"'
  ):
    validate(config)


def test_free_form_sections_accept_any_key():
  config = base_config()
  config.model.kwargs = ml_collections.ConfigDict({"widths": (8, 16), "norm": "group"})
  config.loss.terms = ml_collections.ConfigDict({"focal": {"weight": 1.0, "gamma": 3.0}})
  validate(config)


@pytest.mark.parametrize(
  ("key", "value", "message"),
  [
    (
      "data.name",
      "shapez",
      r"config.data.name='shapez' is not one of "
      r"\['ade20k', 'cityscapes', 'coco', 'coco_panoptic', 'folder', 'pets', 'shapes', 'voc', "
      r"'voc_aug'\]. "
      r"Did you mean \"shapes\"",
    ),
    ("model.dtype", "float8", r"config.model.dtype='float8' is not one of"),
    ("schedule.name", "linear", r"config.schedule.name='linear'"),
    ("data.batch_size", 0, r"config.data.batch_size=0 is invalid: expected a positive integer"),
    ("data.image_size", (32,), r"config.data.image_size=\(32,\) is invalid"),
    ("data.scale_range", (2.0, 1.0), r"config.data.scale_range=\(2.0, 1.0\)"),
    ("optimizer.learning_rate", -1.0, r"config.optimizer.learning_rate=-1.0"),
    ("eval.mode", "tiles", r"config.eval.mode='tiles' is not one of \['slide', 'whole'\]"),
    ("eval.stride", (200, 200), r"config.eval.stride=\(200, 200\) is invalid: expected at most"),
    ("eval.window", (0, 16), r"config.eval.window=\(0, 16\) is invalid"),
    ("eval.scales", (0.5, -1.0), r"config.eval.scales=\(0.5, -1.0\) is invalid"),
    ("model.backbone.name", "resnet51", r"'resnet51' is not one of .*resnet50"),
    ("model.backbone.output_stride", 32, r"output_stride=32 is not one of \[8, 16\]"),
  ],
)
def test_bad_values_name_the_key(key, value, message):
  config = base_config()
  section, _, field = key.rpartition(".")
  node = config
  for part in section.split("."):
    node = node[part]
  node[field] = value
  with pytest.raises(InputError, match=message):
    validate(config)


@pytest.mark.parametrize(
  ("key", "value"), [("mode", "slide"), ("scales", (0.5, 1.0)), ("flip", True)]
)
def test_instance_task_refuses_logit_combining_inference(key, value):
  config = base_config()
  config.task, config.model.name = "instance", "mask_rcnn"
  config.eval[key] = value
  with pytest.raises(InputError, match=r"task 'instance' does not have; use mode='whole'"):
    validate(config)


def test_model_and_task_must_fit():
  config = base_config()
  config.model.name = "mask_rcnn"
  with pytest.raises(InputError, match=r"for task 'instance', but config.task='semantic'"):
    validate(config)
  config.task, config.model.name = "instance", "unet"
  with pytest.raises(InputError, match=r"or use one of \['mask_rcnn'\]"):
    validate(config)


def test_pretrained_weights_need_a_resnet(tmp_path):
  weights = tmp_path / "resnet50.pth"
  weights.write_bytes(b"")
  config = base_config()
  config.model.backbone.pretrained = str(weights)
  with pytest.raises(InputError, match=r"model 'unet' has no ResNet.*backbone.name"):
    validate(config)
  config.model.backbone.name = "resnet50"
  validate(config)


def test_whole_model_weights_need_a_model_that_reads_them_and_a_file(tmp_path):
  config = base_config()
  config.model.pretrained = str(tmp_path / "sam_vit_b.pth")
  with pytest.raises(InputError, match=r"'unet' reads no whole-model checkpoint.*sam_interactive"):
    validate(config)
  config.task, config.model.name = "promptable", "sam_interactive"
  with pytest.raises(InputError, match=r"sam_vit_b\.pth' is not a file"):
    validate(config)
  (tmp_path / "sam_vit_b.pth").write_bytes(b"")
  validate(config)


def test_frozen_patterns_must_be_regular_expressions():
  config = base_config()
  config.optimizer.frozen = ("backbone/(",)
  with pytest.raises(InputError, match=r"'backbone/\(', which is not a regular expression"):
    validate(config)


def test_unknown_loss_term_and_bare_weight():
  config = base_config()
  config.loss.terms = ml_collections.ConfigDict({"dicee": {"weight": 1.0}})
  with pytest.raises(InputError, match=r"config.loss.terms.dicee is not a known loss.*\"dice\""):
    validate(config)
  config.loss.terms = ml_collections.ConfigDict({"dice": 1.0})
  with pytest.raises(InputError, match=r'config.loss.terms.dice=1.0 is invalid.*"weight"'):
    validate(config)


def test_unknown_loss_option_names_the_options():
  config = base_config()
  config.loss.terms = ml_collections.ConfigDict({"focal": {"weight": 1.0, "gama": 2.0}})
  with pytest.raises(
    InputError, match=r"config.loss.terms.focal.gama is not an option of focal.*\"gamma\""
  ):
    validate(config)
  config.loss.terms = ml_collections.ConfigDict(
    {"ce": {"weight": 1.0, "class_weights": "median", "ramp_steps": (0, 10)}}
  )
  validate(config)

"""Every paper recipe of experiments/ that trains on an official data set resolves and runs: its
own config with only the sizes scaled down, two steps and an evaluation on a tiny fake copy of
the data set's official layout (both splits), read from `data.root` or from a prepared copy."""

import json
import math
import pathlib

import pytest
from experiment_files import REPO, load_experiment
from fake_ade20k import write_ade20k
from fake_cityscapes import write_cityscapes
from fake_coco import write_coco, write_coco_panoptic
from fake_pets import write_pets
from fake_voc import write_voc

from segjax.config import base_config, mask_rcnn_tiny
from segjax.data import prepared

pytestmark = pytest.mark.slow


def _cityscapes(root: pathlib.Path) -> None:
  write_cityscapes(root, "train", ("aachen", "bremen"), (48, 96), random_labels=True)
  write_cityscapes(root, "val", ("frankfurt", "lindau"), (48, 96), random_labels=True)


def _ade20k(root: pathlib.Path) -> None:
  write_ade20k(root, "training", size=(24, 8))  # the fake's annotations are 8 wide
  write_ade20k(root, "validation", size=(24, 8))


def _coco(root: pathlib.Path) -> None:
  write_coco(root, "train2017")
  write_coco(root, "val2017")


def _coco_panoptic(root: pathlib.Path) -> None:
  write_coco_panoptic(root, "train2017")
  write_coco_panoptic(root, "val2017")


# data.name -> (writer of a fake official layout with both splits, class names the reader gives:
# a count or, for the COCO fakes, their names).
FAKES = {
  "cityscapes": (_cityscapes, 19),
  "voc": (lambda root: write_voc(root, size=(24, 32)), 21),
  "voc_aug": (lambda root: write_voc(root, size=(24, 32)), 21),  # VOC 2012 and SBD
  "ade20k": (_ade20k, 150),
  "pets": (lambda root: write_pets(root, size=(24, 32)), 3),
  "coco": (_coco, ("background", "car", "dog")),
  "coco_panoptic": (_coco_panoptic, ("person", "car", "sky", "grass")),
}


def _recipes() -> list[str]:
  """The experiments whose default config names an official data set (one `prepared` reads)."""
  names = []
  for path in sorted((REPO / "experiments").glob("*.py")):
    if load_experiment(path.stem).get_config().data.name in prepared.READERS:
      names.append(path.stem)
  return names


def _tiny_kwargs(name: str, recipe: dict) -> dict:
  """`model.kwargs` of model `name` with its widths shrunk; the recipe's others (norm) kept."""
  if name == "unet":
    return {**recipe, "widths": (8, 16)}
  if name == "deeplabv3plus":
    sizes = {"aspp_features": 8, "low_level_features": 8, "decoder_features": 8}
    return {**recipe, "backbone_width": 8, **sizes}
  if name == "panoptic_deeplab":
    sizes = {"aspp_features": 8, "semantic_features": 8, "instance_features": 8}
    return {**recipe, "backbone_width": 8, **sizes, "head_features": (8, 8)}
  if name in ("mask_rcnn", "panoptic_fpn"):
    tiny = dict(mask_rcnn_tiny(base_config()).model.kwargs)
    del tiny["norm"]  # the recipe's: frozen batch norm
    extra = {"semantic_features": 8} if name == "panoptic_fpn" else {}
    return {**recipe, **tiny, **extra}
  if name == "sam_interactive":  # the sizes replace `size` ("vit_b") whole
    return dict(load_experiment("sam_vit_b_finetune").get_config("tiny").model.kwargs)
  raise AssertionError(f"no tiny sizes for model {name!r}: add them to _tiny_kwargs")


# model.name -> (shorter side of the scaled training crop, what every side must be a multiple of).
SIDES = {
  "unet": (32, 4),  # 2 ** len(widths)
  "deeplabv3plus": (32, 1),
  "panoptic_deeplab": (32, 16),
  "mask_rcnn": (64, 32),  # the FPN's stride
  "panoptic_fpn": (64, 32),
  "sam_interactive": (64, 1),  # the tiny SAM's input
}


def scale_down(config, root: str = "", tfds_dir: str = ""):
  """The recipe `config` with only its sizes scaled down, everything else (task, model, loss,
  optimiser, schedule, data set, eval mode and resize) as it is: crops of a short side
  `SIDES[model]` and every other pixel size (eval size, windows, strides, panoptic areas and
  sigma) by the same factor, batches of 2, a ResNet-18 8 wide, narrow heads, float32, 2 steps."""
  model = config.model.name
  short, multiple = SIDES[model]
  factor = short / min(config.data.image_size)

  def scaled(size):
    return tuple(max(multiple, round(s * factor / multiple) * multiple) for s in size)

  config.data.root, config.data.tfds_dir = root, tfds_dir
  config.data.image_size = scaled(config.data.image_size)
  config.data.batch_size = config.eval.batch_size = 2
  config.data.num_threads = 1
  config.data.max_instances = min(config.data.max_instances, 4)
  config.model.dtype = "float32"
  if config.model.backbone.name:
    config.model.backbone.name = "resnet18"
  config.model.kwargs = _tiny_kwargs(model, dict(config.model.kwargs))
  config.model.pretrained = ""
  config.eval.image_size = scaled(config.eval.image_size)
  config.eval.window = scaled(config.eval.window)
  config.eval.stride = tuple(max(1, round(s * factor)) for s in config.eval.stride)
  config.eval.num_overlays = 2
  panoptic = config.panoptic
  panoptic.sigma *= factor
  for key in ("stuff_area", "small_instance_area"):
    panoptic[key] = max(1, round(panoptic[key] * factor**2))
  config.schedule.warmup_steps = min(config.schedule.warmup_steps, 1)
  config.train.steps = config.train.eval_every = config.train.checkpoint_every = 2
  config.train.log_every = 1
  return config


def _in_unit_interval_or_nan(value: float) -> bool:
  return math.isnan(value) or 0 <= value <= 1


def check_scores(config, scores: dict, classes, workdir: pathlib.Path) -> None:
  """The scores of `config.task` over the data set's classes (`classes`: their number or
  names), each in [0, 1] or NaN where a class is absent, and the workdir's train log of step 2."""
  names = None if isinstance(classes, int) else classes
  count = classes if names is None else len(names)
  if config.task == "semantic":
    assert 0 <= scores["miou"] <= 1 and 0 <= scores["pixel_accuracy"] <= 1
    assert len(scores["per_class_iou"]) == count, list(scores["per_class_iou"])
    per_class = scores["per_class_iou"]
  elif config.task == "panoptic":
    for key in ("pq", "sq", "rq", "pq_things", "pq_stuff", "miou"):
      assert _in_unit_interval_or_nan(scores[key]), (key, scores[key])
    assert len(scores["per_class_pq"]) == count, list(scores["per_class_pq"])
    per_class = scores["per_class_pq"]
  elif config.task == "instance":
    for key in ("mask_ap", "mask_ap50", "mask_ap75", "mask_aps", "mask_apm", "mask_apl"):
      assert _in_unit_interval_or_nan(scores[key]), (key, scores[key])
    assert 0 <= scores["mask_ap"] <= 1
    # One AP per thing: every class but COCO's background.
    assert list(scores["per_class_mask_ap"]) == list(names[1:]), scores["per_class_mask_ap"]
    per_class = scores["per_class_mask_ap"]
  elif config.task == "promptable":
    clicks = config.model.kwargs["eval_clicks"]
    assert scores["objects"] > 0
    for key in ("miou@1", "miou@3", "miou@5"):
      assert 0 <= scores[key] <= 1, (key, scores[key])
    for key in ("noc@85", "noc@90"):
      assert 1 <= scores[key] <= clicks, (key, scores[key])
    per_class = {}
  else:
    raise AssertionError(f"no score check for task {config.task!r}: add one to check_scores")
  if names is not None and per_class and config.task != "instance":
    assert list(per_class) == list(names)
  bad = {name: v for name, v in per_class.items() if not _in_unit_interval_or_nan(v)}
  assert not bad, bad
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in records if r["split"] == "train"] == [1, 2]
  evaluations = [r for r in records if r["split"] == config.eval.split]
  assert [r["step"] for r in evaluations] == [2]
  metric = config.eval.metric
  assert evaluations[0][metric] == pytest.approx(scores[metric], nan_ok=True)


@pytest.mark.parametrize("recipe", _recipes())
def test_recipe_runs_two_steps_on_a_fake_official_layout(recipe, tmp_path):
  from segjax.train.loop import train

  config = load_experiment(recipe).get_config()
  name = config.data.name
  if name not in FAKES:
    pytest.fail(
      f"experiments/{recipe}.py trains on {name!r}, which has no fake official layout in "
      f"FAKES of {pathlib.Path(__file__).name}: add a writer of both its splits."
    )
  write, classes = FAKES[name]
  root = tmp_path / name
  write(root)
  config = scale_down(config, root=str(root))
  workdir = tmp_path / "run"
  scores = train(config, str(workdir))
  check_scores(config, scores, classes, workdir)


def test_recipe_runs_from_a_prepared_copy(tmp_path):
  from segjax.train.loop import train

  root, tfds_dir = tmp_path / "cityscapes", tmp_path / "tfds"
  _cityscapes(root)
  prepared.prepare("cityscapes", manual_dir=str(root), tfds_dir=str(tfds_dir))
  config = load_experiment("unet_cityscapes").get_config()
  config = scale_down(config, tfds_dir=str(tfds_dir))
  workdir = tmp_path / "run"
  scores = train(config, str(workdir))
  check_scores(config, scores, 19, workdir)

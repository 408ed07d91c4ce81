"""The one place where every config field gets its default, and the check that rejects bad ones.

Experiments (`experiments/*.py`) start from `base_config()` and override what differs. `validate`
runs before anything is built, so a misspelt key or a bad value fails at once with the key's name.
"""

import difflib
import importlib.util
import pathlib
from collections.abc import Iterable
from typing import Any

import ml_collections

from segjax.errors import InputError

# Sections whose keys are free-form: they hold keyword arguments or named loss terms.
OPEN_SECTIONS = ("model.kwargs", "loss.terms")
DTYPES = ("float32", "bfloat16", "float16")
SCHEDULES = ("cosine", "poly", "constant")
OPTIMIZERS = ("adamw", "sgd")
ON_NONFINITE = ("stop", "skip", "rollback")
RESUME = ("auto", "force")
ON_BAD_EXAMPLE = ("error", "skip")
RESIZES = ("stretch", "pad")
# Keys that say how a run is carried out, not what it computes: a resumed run may change them.
RESUME_NEUTRAL = (
  "train.resume",
  "train.stop_at",
  "train.log_every",
  "train.eval_every",
  "train.checkpoint_every",
  "train.keep_checkpoints",
  "data.num_threads",
  "data.prefetch",
  "eval.num_overlays",
)
CLASS_WEIGHTINGS = ("inverse", "median", "enet")


def base_config() -> ml_collections.ConfigDict:
  """Every field with its default and what it means."""
  c = ml_collections.ConfigDict()
  c.seed = 0  # one seed for parameters, data order, augmentation and dropout
  c.task = "semantic"  # segmentation flavour: a key of segjax.tasks.TASKS

  c.data = ml_collections.ConfigDict()
  c.data.name = "shapes"  # a key of segjax.data.DATASETS, or "tfds:NAME" (a TFDS data set)
  c.data.variant = "128"  # builder config of a catalog data set (shapes: 64, 128, 256)
  c.data.tfds_dir = ""  # where TFDS builds and reads data sets; "" = TFDS default
  # The user's directory of a data set read from its files (folder, cityscapes, ade20k, voc,
  # voc_aug, pets, coco, coco_panoptic); "" reads the copy `segjax data prepare` built in tfds_dir.
  c.data.root = ""
  # A `tfds:NAME` data set (any TFDS data set with an image and a segmentation mask, already
  # built in tfds_dir): its feature names, class names and the value of its first class.
  c.data.image_key = "image"
  c.data.label_key = "segmentation_mask"
  c.data.class_names = ()  # one name per class id, required for tfds:NAME
  # Subtracted from a tfds:NAME data set's mask values; values below it become void (1 for
  # trimaps or masks numbered from 1, where 0 means "unlabelled").
  c.data.label_offset = 0
  c.data.train_split = "train"
  c.data.image_size = (128, 128)  # (H, W) the model sees in training and evaluation
  c.data.batch_size = 8  # global: split over every device of every host
  c.data.ignore_index = 255  # label of void pixels, skipped by every loss and metric
  c.data.max_instances = 32  # instance targets per image (the largest), padded with a valid mask
  c.data.mean = (0.485, 0.456, 0.406)  # per-channel normalisation of [0, 1] images
  c.data.std = (0.229, 0.224, 0.225)
  c.data.scale_range = (0.75, 1.5)  # random rescale before the random crop; (1, 1) disables
  c.data.hflip = True  # random horizontal flip
  c.data.num_threads = 2  # host threads that decode and augment ahead of the step
  c.data.prefetch = 4  # batches (per thread) kept ready
  # A data set file that cannot be read or is inconsistent: "error" names it and stops; "skip"
  # leaves it out, counts it and names the first few (where the data set checks its files).
  c.data.on_bad_example = "error"

  c.model = ml_collections.ConfigDict()
  c.model.name = "unet"  # a key of segjax.models.MODELS
  c.model.dtype = "float32"  # compute dtype; params stay float32 (bfloat16 on accelerators)
  c.model.kwargs = ml_collections.ConfigDict()  # passed to the model's constructor
  # The ResNet of a model: deeplab* default to resnet50; unet takes one as its encoder when set.
  c.model.backbone = ml_collections.ConfigDict()
  c.model.backbone.name = ""  # resnet18 | resnet34 | resnet50 | resnet101 | resnet152
  c.model.backbone.output_stride = 16  # 8 or 16: the last stages dilate instead of striding
  c.model.backbone.deep_stem = False  # three 3x3 convs instead of the 7x7 (ResNet-C, mmseg V1c)
  c.model.backbone.avg_down = False  # average-pool on strided shortcuts (ResNet-D)
  # A torchvision/timm/mmseg ResNet state dict (.pth, .pt or .safetensors) the user downloaded,
  # loaded into the backbone at initialisation; "" = random initialisation.
  c.model.backbone.pretrained = ""
  # A file of the whole model's weights the user downloaded, loaded at initialisation, for models
  # that read one (sam_interactive: an official SAM checkpoint); "" = none.
  c.model.pretrained = ""

  c.loss = ml_collections.ConfigDict()
  # Named terms of the loss, each {"weight": w, **options}; see segjax.losses.LOSSES.
  c.loss.terms = ml_collections.ConfigDict({"ce": {"weight": 1.0}, "dice": {"weight": 1.0}})
  # Class weights for the terms that take them (ce): None, "inverse", "median", "enet" (from the
  # train split's pixel counts, see `segjax stats`) or one number per class.
  c.loss.class_weights = ml_collections.config_dict.placeholder(object)

  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.name = "adamw"  # adamw | sgd (with Nesterov momentum 0.9)
  c.optimizer.learning_rate = 1e-3  # peak learning rate, reached after warmup
  c.optimizer.weight_decay = 1e-4  # decoupled, not applied to biases and norm scales
  c.optimizer.grad_clip_norm = 1.0  # global-norm clipping; 0 disables
  # Regular expressions searched in parameter paths ("sam/image_encoder/..."): the parameters they
  # match are not trained (no update, no decay, no optimiser state), e.g. a pretrained encoder.
  c.optimizer.frozen = ()

  c.schedule = ml_collections.ConfigDict()
  c.schedule.name = "cosine"  # cosine | poly | constant, after a linear warmup
  c.schedule.warmup_steps = 100
  c.schedule.end_factor = 0.01  # final learning rate as a fraction of the peak (cosine)
  c.schedule.power = 0.9  # exponent of the poly schedule (DeepLab's default)

  c.mesh = ml_collections.ConfigDict()
  # Devices per model replica: the train state's arrays are split over a `model` mesh axis of this
  # size (segjax.train.sharding); batches are split over the rest. 1 = pure data parallelism.
  c.mesh.model = 1

  c.train = ml_collections.ConfigDict()
  c.train.steps = 2000  # optimiser updates
  c.train.log_every = 50  # steps between train-metric lines
  c.train.eval_every = 500  # steps between evaluations (and at the last step)
  c.train.checkpoint_every = 500  # steps between checkpoints (and at the last step)
  c.train.keep_checkpoints = 3  # latest checkpoints kept; the best is kept apart
  c.train.stop_at = 0  # stop (with a checkpoint) at this step, for time-boxed jobs; 0 = train.steps
  # A workdir's checkpoints are resumed only with the config they were trained with ("auto"),
  # apart from the keys of RESUME_NEUTRAL; "force" resumes whatever changed.
  c.train.resume = "auto"
  # A NaN or infinite loss or gradient: "stop" (naming the step, loss terms and examples), "skip"
  # the update (counted in the logs), or "rollback" to the last checkpoint's weights and go on.
  # Checked inside the step and reported at log time: no host sync per step.
  c.train.on_nonfinite = "stop"
  c.train.inject_nonfinite_at = ()  # steps whose loss is made NaN: tests the handling above

  c.eval = ml_collections.ConfigDict()
  c.eval.split = "validation"
  c.eval.metric = "miou"  # the score that picks the best checkpoint (higher is better)
  c.eval.batch_size = 16  # global
  c.eval.num_overlays = 6  # prediction overlays written per evaluation
  # How eval and predict run the model (segjax.inference). Images are resized to image_size.
  c.eval.image_size = ()  # (H, W) to evaluate at; () = data.image_size
  # How eval and predict bring an image to eval.image_size: "stretch" resizes to it; "pad" keeps
  # the aspect ratio, scales the image to fit and pads bottom and right (image 0, labels void).
  c.eval.resize = "stretch"
  c.eval.mode = "whole"  # whole image, or "slide": overlapping windows blended together
  c.eval.window = ()  # slide: (H, W) of a window; () = data.image_size, the training crop
  c.eval.stride = ()  # slide: (H, W) between windows; () = two thirds of the window
  c.eval.blend = "uniform"  # slide: "uniform" averages overlaps (mmseg), "gaussian" (nnU-Net)
  c.eval.scales = (1.0,)  # test-time resize factors; probabilities are averaged over them
  c.eval.flip = False  # also average over horizontally flipped images

  # The panoptic task (segjax.tasks.panoptic): targets, losses and the post-processing that turns
  # heads into segments. Areas are in pixels at the evaluated size.
  c.panoptic = ml_collections.ConfigDict()
  c.panoptic.semantic_weight = 1.0  # weight of the semantic loss (Panoptic FPN: 0.5)
  c.panoptic.stuff_area = 2048  # stuff segments smaller than this become void
  # Panoptic-DeepLab.
  c.panoptic.hard_pixel_fraction = 0.2  # semantic CE over the hardest 20% of pixels
  c.panoptic.small_instance_area = 4096  # pixels of thing instances smaller than this ...
  c.panoptic.small_instance_weight = 3.0  # ... weigh this much in the semantic loss
  c.panoptic.sigma = 8.0  # of the Gaussian centre targets, in pixels
  c.panoptic.center_weight = 200.0  # weight of the centre heatmap MSE
  c.panoptic.offset_weight = 0.01  # weight of the offset L1
  c.panoptic.center_threshold = 0.1  # centres scoring less are dropped
  c.panoptic.nms_kernel = 7  # max-pool window of the centre NMS (odd)
  c.panoptic.top_k = 200  # centres kept per image
  # Panoptic FPN.
  c.panoptic.score_threshold = 0.5  # detections scoring less are not painted
  c.panoptic.overlap_threshold = 0.5  # a detection overlapping painted pixels more is skipped
  return c


def tiny(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Turns an experiment into its `:tiny` variant: a few-thousand-parameter U-Net on 32x32 crops
  of `shapes/64`, 4 steps, evaluated and checkpointed at the end; a CPU run of seconds for tests.
  """
  c.model.name, c.model.kwargs = "unet_tiny", {}
  c.data.variant, c.data.image_size = "64", (32, 32)
  c.data.batch_size, c.eval.batch_size = 4, 8
  c.train.steps, c.train.log_every = 4, 2
  c.train.eval_every = c.train.checkpoint_every = 4
  c.schedule.warmup_steps = 1
  return c


def deeplab_r50_d8(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """mmsegmentation's DeepLab training on R-50-D8, shared by the paper recipes: DeepLabv3+ on a
  ResNet-50-V1c (deep stem) at output stride 8, cross-entropy, SGD (lr 0.01, weight decay 5e-4,
  no clipping) with the poly schedule and no warmup, bfloat16 compute."""
  c.model.name = "deeplabv3plus"
  c.model.backbone.name = "resnet50"
  c.model.backbone.deep_stem = True  # V1c, as mmsegmentation's ImageNet weights
  c.model.backbone.output_stride = 8
  c.model.dtype = "bfloat16"
  c.loss.terms = {"ce": {"weight": 1.0}}
  c.optimizer.name = "sgd"
  c.optimizer.learning_rate = 0.01
  c.optimizer.weight_decay = 5e-4
  c.optimizer.grad_clip_norm = 0.0
  c.schedule.name = "poly"
  c.schedule.warmup_steps = 0
  return c


def mask_rcnn_small_scenes(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Mask R-CNN (and Panoptic FPN) scaled to 128x128 `shapes` scenes on CPU: anchors of 8-128 px
  for 4-40 px objects, fewer proposals and RoIs, narrower heads, batch norm trained, and AdamW,
  which from random weights learns faster here than detectron2's SGD (mask AP 0.040 after 600
  steps where SGD, lr 0.02, reached 0.012)."""
  c.model.backbone.name = "resnet50"
  c.model.kwargs = {
    "norm": "batch",
    "fpn_features": 128,
    "anchor_sizes": (8, 16, 32, 64, 128),
    "rpn_pre_nms_topk_train": 1000,
    "rpn_post_nms_topk_train": 300,
    "rpn_pre_nms_topk_test": 500,
    "rpn_post_nms_topk_test": 300,
    "roi_batch_size": 128,
    "box_head_hidden": 256,
    "mask_head_features": 128,
  }
  c.data.variant = "128"
  c.data.image_size = (128, 128)
  c.data.scale_range = (0.8, 1.25)
  c.data.batch_size = 4
  c.data.max_instances = 16
  c.loss.terms = {"ce": {"weight": 1.0}}  # unused: Mask R-CNN has its own losses
  c.optimizer.name = "adamw"
  c.optimizer.learning_rate = 1e-3
  c.optimizer.weight_decay = 1e-4
  c.optimizer.grad_clip_norm = 1.0
  c.schedule.name = "cosine"
  c.schedule.warmup_steps = 100
  c.train.steps = 600
  c.train.eval_every = c.train.checkpoint_every = 300
  c.eval.batch_size = 8
  return c


def mask_rcnn_tiny(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The `:tiny` variant of a Mask R-CNN experiment (`tiny`, then a ResNet-18 eight channels wide
  with a few proposals and RoIs on 64x64 crops): seconds on CPU, for tests."""
  model = c.model.name
  tiny(c)
  c.model.name = model
  c.model.backbone.name = "resnet18"
  c.model.kwargs = {
    "norm": "batch",
    "backbone_width": 8,
    "fpn_features": 16,
    "anchor_sizes": (8, 16, 32, 64, 128),
    "rpn_pre_nms_topk_train": 200,
    "rpn_post_nms_topk_train": 64,
    "rpn_pre_nms_topk_test": 200,
    "rpn_post_nms_topk_test": 64,
    "rpn_batch_size": 64,
    "roi_batch_size": 32,
    "box_head_hidden": 32,
    "mask_head_features": 16,
    "detections": 20,
  }
  c.data.image_size = (64, 64)
  c.data.max_instances = 8
  return c


def detectron2_coco_1x(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """detectron2's COCO 1x training of Mask R-CNN and Panoptic FPN on R50-FPN: 800x1216 training
  crops (static shapes; detectron2 keeps the aspect ratio up to 1333 px) with shorter sides 640-800,
  evaluation with the aspect ratio kept inside 800x1344,
  batch 16, frozen batch norm, SGD lr 0.02 over 90k iterations (a cosine schedule stands in for
  the steps at 60k and 80k), bfloat16 compute."""
  c.data.image_size = (800, 1216)
  c.data.scale_range = (0.8, 1.0)
  c.data.batch_size = 16
  c.data.max_instances = 100
  c.data.num_threads = 16
  c.model.backbone.name = "resnet50"
  c.model.dtype = "bfloat16"
  c.model.kwargs = {"norm": "frozen_batch"}
  c.loss.terms = {"ce": {"weight": 1.0}}  # unused: Mask R-CNN has its own losses
  c.optimizer.name = "sgd"
  c.optimizer.learning_rate = 0.02
  c.optimizer.weight_decay = 1e-4
  c.optimizer.grad_clip_norm = 0.0
  c.schedule.name = "cosine"
  c.schedule.warmup_steps = 1000
  c.schedule.end_factor = 0.01
  c.train.steps = 90_000
  c.train.log_every = 20
  c.train.eval_every = c.train.checkpoint_every = 10_000
  # detectron2 tests at shorter side 800, longer at most 1333: the nearest static shape keeps the
  # aspect ratio inside 800x1344 (a multiple of the FPN's stride 32) and pads the rest.
  c.eval.image_size = (800, 1344)
  c.eval.resize = "pad"
  c.eval.batch_size = 8
  return c


def load_experiment(path: str | pathlib.Path):
  """The experiment file at `path` as a module: its `get_config(arg)`, and `VARIANTS` and
  `sweep()` where it has them.

  Raises:
    InputError: there is no such file.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise InputError(f"experiment file {path} does not exist; see experiments/ for the recipes.")
  spec = importlib.util.spec_from_file_location(f"experiment_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def experiment_config(spec: str, overrides: dict[str, Any] | None = None):
  """`get_config(arg)` of the experiment `spec` = "path[:arg]", as `--config path:arg` gives it,
  with `overrides` ({"data.batch_size": 8, ...}) applied and the result validated."""
  path, _, arg = spec.partition(":")
  config = load_experiment(path).get_config(arg)
  for key, value in (overrides or {}).items():
    if not _has_path(config, key):
      raise InputError(f"{spec} has no config key {key!r}.{_suggest(key, _paths(config))}")
    config.update_from_flattened_dict({key: value})
  return validate(config)


def _has_path(config: ml_collections.ConfigDict, key: str) -> bool:
  head, _, rest = key.partition(".")
  if head not in config:
    return False
  return not rest or (
    isinstance(config[head], ml_collections.ConfigDict) and _has_path(config[head], rest)
  )


def flatten(values: dict, prefix: str = "") -> dict[str, Any]:
  """A config's JSON values as `{"data.image_size": (64, 64), ...}`: dotted keys, tuples for lists.

  The free-form sections (`loss.terms`, `model.kwargs`) stay one value each: they are replaced
  whole, never merged key by key.
  """
  flat = {}
  for key, value in values.items():
    path = f"{prefix}{key}"
    if isinstance(value, dict) and path not in OPEN_SECTIONS:
      flat.update(flatten(value, path + "."))
    else:
      flat[path] = _tuples(value)
  return flat


def _tuples(value):
  """JSON has lists where the config had tuples."""
  if isinstance(value, list):
    return tuple(_tuples(v) for v in value)
  if isinstance(value, dict):
    return {k: _tuples(v) for k, v in value.items()}
  return value


def _paths(config: ml_collections.ConfigDict, prefix: str = "") -> Iterable[str]:
  for key, value in config.items():
    path = f"{prefix}{key}"
    yield path
    if isinstance(value, ml_collections.ConfigDict) and path not in OPEN_SECTIONS:
      yield from _paths(value, path + ".")


def _suggest(path: str, known: Iterable[str]) -> str:
  close = difflib.get_close_matches(path, list(known), n=1, cutoff=0.6)
  return f' Did you mean "{close[0]}"?' if close else ""


def _require(ok: bool, key: str, value, expected: str) -> None:
  if not ok:
    raise InputError(f"config.{key}={value!r} is invalid: expected {expected}.")


def _choice(config: ml_collections.ConfigDict, key: str, choices: Iterable[str]) -> None:
  value = config
  for part in key.split("."):
    value = value[part]
  choices = sorted(choices)
  if value not in choices:
    hint = _suggest(value, choices) if isinstance(value, str) else ""
    raise InputError(f"config.{key}={value!r} is not one of {choices}.{hint}")


def _check_backbone(config: ml_collections.ConfigDict) -> None:
  from segjax.models import MODELS, default_backbone
  from segjax.models.backbones import BACKBONES

  backbone = config.model.backbone
  if backbone.name:
    _choice(config, "model.backbone.name", BACKBONES)
  _choice(config, "model.backbone.output_stride", (8, 16))
  if backbone.pretrained:
    if not (backbone.name or default_backbone(MODELS[config.model.name])):
      raise InputError(
        f"config.model.backbone.pretrained is set, but model {config.model.name!r} has no ResNet: "
        f"set config.model.backbone.name to one of {sorted(BACKBONES)}."
      )
    import pathlib

    path = pathlib.Path(backbone.pretrained).expanduser()
    if not path.is_file():
      raise InputError(
        f"config.model.backbone.pretrained={backbone.pretrained!r} is not a file: give the path "
        "of a downloaded ResNet state dict (.pth, .pt or .safetensors)."
      )


def _check_frozen(config: ml_collections.ConfigDict) -> None:
  import re

  patterns = config.optimizer.frozen
  _require(
    isinstance(patterns, list | tuple) and all(isinstance(p, str) and p for p in patterns),
    "optimizer.frozen",
    patterns,
    'a tuple of regular expressions, e.g. ("sam/image_encoder/",)',
  )
  for pattern in patterns:
    try:
      re.compile(pattern)
    except re.error as error:
      raise InputError(
        f"config.optimizer.frozen has {pattern!r}, which is not a regular expression ({error})."
      ) from error


def _check_pretrained(config: ml_collections.ConfigDict) -> None:
  import pathlib

  from segjax.models import MODELS

  path = config.model.pretrained
  if not path:
    return
  if not hasattr(MODELS[config.model.name], "pretrained_variables"):
    readers = sorted(n for n, m in MODELS.items() if hasattr(m, "pretrained_variables"))
    raise InputError(
      f"config.model.pretrained is set, but model {config.model.name!r} reads no whole-model "
      f"checkpoint (those that do: {readers}); ResNet weights go in "
      "config.model.backbone.pretrained."
    )
  if not pathlib.Path(path).expanduser().is_file():
    raise InputError(
      f"config.model.pretrained={path!r} is not a file: give the path of the downloaded "
      "checkpoint (for SAM, e.g. sam_vit_b_01ec64.pth)."
    )


def _check_panoptic(config: ml_collections.ConfigDict) -> None:
  p = config.panoptic
  for key in ("semantic_weight", "center_weight", "offset_weight", "small_instance_weight"):
    _require(p[key] >= 0, f"panoptic.{key}", p[key], "a number >= 0")
  for key in ("stuff_area", "small_instance_area"):
    _require(isinstance(p[key], int) and p[key] >= 0, f"panoptic.{key}", p[key], "an integer >= 0")
  fraction = p.hard_pixel_fraction
  _require(0 < fraction <= 1, "panoptic.hard_pixel_fraction", fraction, "a fraction in (0, 1]")
  for key in ("center_threshold", "score_threshold", "overlap_threshold"):
    _require(0 <= p[key] <= 1, f"panoptic.{key}", p[key], "a number in [0, 1]")
  _require(p.sigma > 0, "panoptic.sigma", p.sigma, "a positive number of pixels")
  _require(
    isinstance(p.nms_kernel, int) and p.nms_kernel > 0 and p.nms_kernel % 2 == 1,
    "panoptic.nms_kernel",
    p.nms_kernel,
    "a positive odd integer",
  )
  _require(
    isinstance(p.top_k, int) and p.top_k > 0, "panoptic.top_k", p.top_k, "a positive integer"
  )


def _check_eval(config: ml_collections.ConfigDict) -> None:
  from segjax.inference import BLENDS, MODES
  from segjax.tasks import TASKS

  _choice(config, "eval.mode", MODES)
  if combines_logits(config) and not TASKS[config.task].per_pixel_logits:
    raise InputError(
      f"config.eval.mode={config.eval.mode!r}, scales={tuple(config.eval.scales)}, "
      f"flip={config.eval.flip}: sliding windows and test-time augmentation combine per-pixel "
      f"logits, which task {config.task!r} does not have; use mode='whole', scales=(1.0,), "
      "flip=False."
    )
  _choice(config, "eval.blend", BLENDS)
  for key in ("eval.image_size", "eval.window", "eval.stride"):
    value = tuple(config.eval[key.split(".")[1]])
    _require(
      value == () or (len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value)),
      key,
      value,
      "() or two positive integers (H, W)",
    )
  window, stride = inference_window(config)
  _require(
    all(s <= w for s, w in zip(stride, window, strict=True)),
    "eval.stride",
    stride,
    f"at most the window {window} along each axis",
  )
  scales = tuple(config.eval.scales)
  _require(
    len(scales) > 0 and all(isinstance(s, int | float) and s > 0 for s in scales),
    "eval.scales",
    scales,
    "one or more positive factors, e.g. (0.75, 1.0, 1.25)",
  )


def combines_logits(config: ml_collections.ConfigDict) -> bool:
  """Whether eval combines logits (sliding windows, several scales or flips) rather than
  running the model once on the whole image."""
  eval_config = config.eval
  return eval_config.mode != "whole" or tuple(eval_config.scales) != (1.0,) or eval_config.flip


def eval_image_size(config: ml_collections.ConfigDict) -> tuple[int, int]:
  """(H, W) that eval and predict resize images to."""
  return tuple(config.eval.image_size) or tuple(config.data.image_size)


def inference_window(config: ml_collections.ConfigDict) -> tuple[tuple[int, int], tuple[int, int]]:
  """The sliding window's (H, W) and stride, defaults filled in."""
  window = tuple(config.eval.window) or tuple(config.data.image_size)
  stride = tuple(config.eval.stride) or tuple(max(1, 2 * w // 3) for w in window)
  return window, stride


def validate(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Checks keys against `base_config()` and values against what the code accepts.

  Raises:
    InputError: naming the key, the value, what was expected and, for a misspelt key, the
      closest valid key.
  """
  # Imported here: the registries import models and losses, which are heavy and not needed to
  # build a config.
  from segjax.data import DATASETS, is_known
  from segjax.losses import LOSSES
  from segjax.losses.combine import term_options
  from segjax.models import MODEL_TASKS, MODELS
  from segjax.tasks import TASKS

  known = set(_paths(base_config()))
  for path in _paths(config):
    if path not in known:
      raise InputError(f"config.{path} is not a known key.{_suggest(path, known)}")

  _choice(config, "task", TASKS)
  if not is_known(config.data.name):
    _choice(config, "data.name", DATASETS)  # names the known ones
  _choice(config, "eval.resize", RESIZES)
  _require(
    isinstance(config.data.label_offset, int) and 0 <= config.data.label_offset <= 255,
    "data.label_offset",
    config.data.label_offset,
    "an integer in 0..255",
  )
  _choice(config, "model.name", MODELS)
  _choice(config, "model.dtype", DTYPES)
  if MODEL_TASKS[config.model.name] != config.task:
    fitting = sorted(n for n, t in MODEL_TASKS.items() if t == config.task)
    raise InputError(
      f"config.model.name={config.model.name!r} is a model for task "
      f"{MODEL_TASKS[config.model.name]!r}, but config.task={config.task!r}: set "
      f"config.task={MODEL_TASKS[config.model.name]!r}, or use one of {fitting}."
    )
  _check_backbone(config)
  _check_pretrained(config)
  _choice(config, "optimizer.name", OPTIMIZERS)
  _choice(config, "schedule.name", SCHEDULES)
  for name, term in config.loss.terms.items():
    if name not in LOSSES:
      raise InputError(
        f"config.loss.terms.{name} is not a known loss; known: {sorted(LOSSES)}."
        f"{_suggest(name, LOSSES)}"
      )
    _require(
      isinstance(term, ml_collections.ConfigDict) and "weight" in term,
      f"loss.terms.{name}",
      term,
      'a dict with a "weight" and the term\'s options, e.g. {"weight": 1.0}',
    )
    # Caught here, not when the loss is first traced after data and model are built.
    options = term_options(LOSSES[name])
    for option in term:
      if option not in options:
        raise InputError(
          f"config.loss.terms.{name}.{option} is not an option of {name}; it takes "
          f"{list(options)}.{_suggest(option, options)}"
        )
  weights = config.loss.class_weights
  _require(
    weights is None
    or weights in CLASS_WEIGHTINGS
    or (isinstance(weights, list | tuple) and all(isinstance(w, int | float) for w in weights)),
    "loss.class_weights",
    weights,
    f"None, one of {list(CLASS_WEIGHTINGS)} or a list of per-class weights",
  )
  _require(len(config.loss.terms) > 0, "loss.terms", dict(config.loss.terms), "at least one term")

  size = tuple(config.data.image_size)
  _require(
    len(size) == 2 and all(isinstance(s, int) and s > 0 for s in size),
    "data.image_size",
    size,
    "two positive integers (H, W)",
  )
  for key in (
    "data.batch_size",
    "data.max_instances",
    "eval.batch_size",
    "train.steps",
    "train.log_every",
  ):
    section, field = key.split(".")
    value = config[section][field]
    _require(isinstance(value, int) and value > 0, key, value, "a positive integer")
  _choice(config, "train.on_nonfinite", ON_NONFINITE)
  _choice(config, "train.resume", RESUME)
  _choice(config, "data.on_bad_example", ON_BAD_EXAMPLE)
  _require(
    all(isinstance(s, int) and s > 0 for s in config.train.inject_nonfinite_at),
    "train.inject_nonfinite_at",
    config.train.inject_nonfinite_at,
    "a tuple of step numbers (1 = the first step)",
  )
  for key in (
    "train.eval_every",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "train.stop_at",
  ):
    section, field = key.split(".")
    value = config[section][field]
    _require(isinstance(value, int) and value >= 0, key, value, "an integer >= 0 (0 = never)")
  _check_eval(config)
  _check_panoptic(config)
  _check_frozen(config)
  lo, hi = config.data.scale_range
  _require(0 < lo <= hi, "data.scale_range", (lo, hi), "0 < min <= max")
  _require(
    config.optimizer.learning_rate > 0,
    "optimizer.learning_rate",
    config.optimizer.learning_rate,
    "a positive number",
  )
  _require(
    config.data.ignore_index >= 0, "data.ignore_index", config.data.ignore_index, "an integer >= 0"
  )
  _require(
    len(config.data.mean) == 3 and len(config.data.std) == 3 and min(config.data.std) > 0,
    "data.std",
    config.data.std,
    "three positive numbers, with a mean of three numbers",
  )
  return config

"""Reading runs for notebooks: metrics as data frames, and a checkpoint's predictions on a split.

pandas is an optional dependency (the `notebook` extra), so it is imported where it is used.
`load` compares many runs (a sweep) in one table; `confusion` and `per_image` read
semantic-segmentation runs.
"""

import functools
import glob
import json
import os
import pathlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from segjax import config as config_lib
from segjax.data import open_dataset
from segjax.errors import InputError
from segjax.metrics import coco_mask_ap, confusion_matrix, semantic_scores
from segjax.metrics.panoptic import panoptic_scores, panoptic_stats
from segjax.train import sharding
from segjax.train.evaluate import split_batches
from segjax.train.logging import read_metrics
from segjax.train.loop import Experiment, build, load_config, restore_state

if TYPE_CHECKING:
  import pandas

PathLike = str | os.PathLike


def _flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
  """`{"per_class_iou": {"sky": 0.9}}` -> `{"per_class_iou/sky": 0.9}`; null becomes NaN."""
  flat = {}
  for key, value in record.items():
    if isinstance(value, dict):
      flat.update(_flatten(value, f"{prefix}{key}/"))
    else:
      flat[prefix + key] = np.nan if value is None else value
  return flat


def metrics(workdir: PathLike) -> "pandas.DataFrame":
  """The run's `metrics.jsonl` as a table: one row per (step, split), in step order.

  Returns:
    Columns `step`, `split` and one per logged value (`loss`, `miou`, `per_class_iou/<class>`,
    ...); NaN where a split does not log that value or logged null.
  """
  import pandas as pd

  return pd.DataFrame([_flatten(record) for record in read_metrics(workdir)])


def curves(
  workdirs: PathLike | Sequence[PathLike], names: Sequence[str] | None = None
) -> "pandas.DataFrame":
  """The numeric metrics of one or more runs in long form, for plotting runs together.

  Args:
    workdirs: run directories.
    names: one label per run; by default each directory's name.

  Returns:
    Columns `run`, `step`, `split`, `metric`, `value`; one row per logged number.
  """
  import pandas as pd

  if isinstance(workdirs, str | os.PathLike):
    workdirs = [workdirs]
  names = [pathlib.Path(w).name for w in workdirs] if names is None else list(names)
  if len(names) != len(workdirs):
    raise ValueError(f"{len(names)} names for {len(workdirs)} workdirs.")
  frames = []
  for name, workdir in zip(names, workdirs, strict=True):
    frame = metrics(workdir)
    numeric = frame.drop(columns="step").select_dtypes("number").columns
    long = frame.melt(["step", "split"], numeric, var_name="metric", value_name="value")
    frames.append(long.dropna(subset="value").assign(run=name))
  return pd.concat(frames, ignore_index=True)[["run", "step", "split", "metric", "value"]]


def best(workdir: PathLike) -> "pandas.Series":
  """The evaluation with the highest `config.eval.metric`: the one the best checkpoint kept.

  Returns:
    That row of `metrics(workdir)`, without the columns its split never logs.
  """
  config = load_config(workdir)
  frame = metrics(workdir)
  evaluations = frame[frame["split"] == config.eval.split].dropna(axis=1, how="all")
  if evaluations.empty:
    raise InputError(f"{workdir}/metrics.jsonl has no {config.eval.split} evaluation yet.")
  # idxmax takes the first of equal scores, as the best checkpoint keeps only strict gains.
  return evaluations.loc[evaluations[config.eval.metric].idxmax()]


def _workdirs(pattern_or_paths: PathLike | Sequence[PathLike]) -> list[pathlib.Path]:
  """A glob's directories that hold a config.json, or the given paths (each must hold one)."""
  if isinstance(pattern_or_paths, str | os.PathLike):
    pattern = str(pattern_or_paths)
    paths = [pathlib.Path(p) for p in sorted(glob.glob(pattern))]
    paths = [p for p in paths if (p / "config.json").is_file()]
    if not paths:
      raise InputError(f"No run directory (one with a config.json) matches {pattern!r}.")
    return paths
  paths = [pathlib.Path(p) for p in pattern_or_paths]
  for path in paths:
    if not (path / "config.json").is_file():
      raise InputError(f"{path}/config.json is missing: is {path} a segjax workdir?")
  return paths


def _numbers(record: dict[str, Any], prefix: str) -> dict[str, float]:
  """The numeric entries of an evaluation record, flattened and prefixed; null becomes NaN."""
  return {
    prefix + key: value
    for key, value in _flatten(record).items()
    if isinstance(value, int | float) and not isinstance(value, bool)
  }


def _best(evaluations: list[dict[str, Any]], metric: str) -> dict[str, Any]:
  """The first evaluation with the highest `metric` (as the best checkpoint keeps); null loses."""
  return max(evaluations, key=lambda r: -np.inf if r.get(metric) is None else r[metric])


def load(
  pattern_or_paths: PathLike | Sequence[PathLike], *, all_keys: bool = False
) -> "pandas.DataFrame":
  """Many runs side by side: what differs in their configs, and how each ended.

  Args:
    pattern_or_paths: a glob such as `"runs/ablation/*"` (directories without a config.json are
      skipped), or a list of workdirs.
    all_keys: keep every config key, not only those whose values differ between the runs.

  Returns:
    One row per run, in the order given (a glob's sorted). Columns: `run` (the directory's name);
    the config keys as `segjax.config.flatten` names them (a key absent from a run counts as
    differing);
    `final/<score>`, the last evaluation on `eval.split` (`final/miou`, `final/step`,
    `final/per_class_iou/<class>`, ...); `best/<score>`, the evaluation with the highest
    `eval.metric` (the first of equals, as the best checkpoint keeps); `steps_per_sec`, the mean
    of the train records'. NaN where a run has no evaluation or no train record yet.
  """
  import pandas as pd

  paths = _workdirs(pattern_or_paths)
  configs = [config_lib.flatten(json.loads((p / "config.json").read_text())) for p in paths]
  keys = list(dict.fromkeys(k for config in configs for k in config))
  if not all_keys:
    # JSON text compares dicts (loss terms) and tuples alike; a missing key differs from any value.
    canonical = lambda config, k: json.dumps(config.get(k, "<absent>"), sort_keys=True)
    keys = [k for k in keys if len({canonical(c, k) for c in configs}) > 1]

  rows = []
  for path, config in zip(paths, configs, strict=True):
    records = read_metrics(path) if (path / "metrics.jsonl").is_file() else []
    evaluations = [r for r in records if r["split"] == config["eval.split"]]
    speeds = [r["steps_per_sec"] for r in records if r["split"] == "train" and "steps_per_sec" in r]
    row = {"run": path.name, **{k: config.get(k, np.nan) for k in keys}}
    if evaluations:
      row.update(_numbers(evaluations[-1], "final/"))
      row.update(_numbers(_best(evaluations, config["eval.metric"]), "best/"))
    row["steps_per_sec"] = float(np.mean(speeds)) if speeds else np.nan
    rows.append(row)
  frame = pd.DataFrame(rows)
  scores = [c for c in frame.columns if c.startswith(("final/", "best/"))]
  scores.sort(key=lambda c: not c.startswith("final/"))  # stable: final/ first, then best/
  return frame[["run", *keys, *scores, "steps_per_sec"]]


def per_class(record: "pandas.Series") -> "pandas.DataFrame":
  """The per-class scores of one evaluation (a row of `metrics`) as a table.

  Returns:
    One row per class, in class-id order; one column per score (`iou`, `accuracy`,
    `boundary_iou`, ...).
  """
  import pandas as pd

  table: dict[str, dict[str, float]] = {}
  for key, value in record.filter(regex=r"^per_class_[^/]+/").items():
    score, name = key.split("/", 1)
    table.setdefault(score.removeprefix("per_class_"), {})[name] = value
  return pd.DataFrame(table)


def summary(workdir: PathLike) -> dict[str, Any]:
  """What the run in `workdir` trained: model, data, loss terms, optimisation, steps."""
  c = load_config(workdir)
  return {
    "task": c.task,
    "model": f"{c.model.name} {c.model.kwargs.to_dict()} ({c.model.dtype})",
    "data": f"{c.data.name} {c.data.root or c.data.variant} at {tuple(c.data.image_size)}",
    "batch size": c.data.batch_size,
    "loss terms": c.loss.terms.to_dict(),
    "optimizer": (
      f"{c.optimizer.name}, lr {c.optimizer.learning_rate:g}, "
      f"weight decay {c.optimizer.weight_decay:g}"
    ),
    "schedule": f"{c.schedule.name}, {c.schedule.warmup_steps} warmup steps",
    "steps": c.train.steps,
    "evaluation": f"{c.eval.metric} on {c.eval.split}, every {c.train.eval_every} steps",
    "seed": c.seed,
  }


def _predictions(
  workdir: PathLike, split: str | None, checkpoint: str | int, limit: int | None
) -> tuple[Experiment, int, Iterator[dict[str, np.ndarray]]]:
  """Restores a checkpoint of `workdir` and predicts `split` (default `config.eval.split`).

  Returns:
    The experiment, the checkpoint's step, and an iterator over this host's batches of the split
    (its first `limit` examples), void padding dropped: the task's fields (`image: u8[B,H,W,3]`,
    `semantic: u8[B,H,W]` or `panoptic: i32[B,H,W]`), `prediction: i32[B,H,W]` and `stats`, the
    task's evaluation statistics of the batch (padding included).
  """
  config = load_config(workdir)
  dataset = open_dataset(config.data, split or config.eval.split)
  exp = build(config, dataset)
  step, state = restore_state(exp, str(workdir), str(checkpoint))

  def batches():
    for local in split_batches(exp, dataset, limit=limit):
      stats, predictions = exp.eval_step(state, sharding.to_global(local, exp.mesh))
      valid = local.pop("valid")
      yield {
        **{k: v[valid] for k, v in local.items()},
        "prediction": sharding.to_local(predictions)[valid],
        "stats": stats,
      }

  return exp, step, batches()


def _confusions(exp: Experiment, batch: dict[str, np.ndarray]) -> np.ndarray:
  """i64[B,C,C]: each image's confusion matrix, rows = truth, columns = prediction."""
  count = functools.partial(
    confusion_matrix, num_classes=exp.task.num_classes, ignore_index=exp.task.ignore_index
  )
  return np.asarray(jax.vmap(count)(batch["prediction"], batch["semantic"]), np.int64)


def confusion(
  workdir: PathLike,
  *,
  split: str | None = None,
  checkpoint: str | int = "best",
  limit: int | None = None,
) -> tuple[np.ndarray, tuple[str, ...]]:
  """The pixel confusion matrix of a checkpoint (best, latest or a step) on a split.

  Args:
    workdir: the run.
    split: default `config.eval.split`.
    checkpoint: "best", "latest" or a step number.
    limit: score only the split's first `limit` examples.

  Returns:
    `confmat: i64[C,C]` (rows = truth, columns = prediction, void skipped) and the class names.
  """
  exp, _, batches = _predictions(workdir, split, checkpoint, limit)
  c = exp.task.num_classes
  confmat = np.zeros((c, c), np.int64)
  for batch in batches:
    confmat += _confusions(exp, batch).sum(axis=0)
  return confmat, exp.task.dataset.class_names


def per_image(
  workdir: PathLike,
  *,
  split: str | None = None,
  checkpoint: str | int = "best",
  limit: int | None = None,
) -> dict[str, Any]:
  """A checkpoint's predictions on a split, image by image, with the scores to rank them.

  Holds the whole split in memory: pass `limit` for large ones. Arguments as in `confusion`.

  Returns:
    `images: u8[N,H,W,3]`, `labels: u8[N,H,W]`, `predictions: i32[N,H,W]` at the eval size
    (`config.eval.image_size`, else `config.data.image_size`); `miou: f64[N]`, each image's mIoU
    over the classes in its truth or prediction (NaN for an all-void image); `confmat: i64[C,C]`,
    summed over the images; `class_names`; `step`, the checkpoint's.
  """
  exp, step, batches = _predictions(workdir, split, checkpoint, limit)
  images, labels, predictions, confmats = [], [], [], []
  for batch in batches:
    images.append(batch["image"])
    labels.append(batch["semantic"])
    predictions.append(batch["prediction"])
    confmats.append(_confusions(exp, batch))
  confmats = np.concatenate(confmats)
  return {
    "images": np.concatenate(images),
    "labels": np.concatenate(labels),
    "predictions": np.concatenate(predictions),
    "miou": np.array([semantic_scores(cm)["miou"] for cm in confmats], np.float64),
    "confmat": confmats.sum(axis=0),
    "class_names": exp.task.dataset.class_names,
    "step": step,
  }


def instance_results(
  workdir: PathLike,
  *,
  split: str | None = None,
  checkpoint: str | int = "best",
  limit: int | None = None,
) -> dict[str, Any]:
  """An instance run's detections on a split, image by image, with COCO mask AP overall and per
  image (to find the failures). Arguments as in `confusion`.

  Returns:
    `images: u8[N,H,W,3]`, `truth: i32[N,H,W]` (panoptic ids), `predictions: i32[N,H,W]`
    (instance maps: class * 1000 + rank); `detections` and `ground_truth`, per image, as
    `segjax.metrics.coco_mask_ap` takes them; `scores`, the task's scores over these images;
    `ap50: f64[N]`, each image's mask AP at IoU 0.5 (NaN without ground truth); `class_names`
    (the thing classes); `step`.
  """
  exp, step, batches = _predictions(workdir, split, checkpoint, limit)
  images, truth, predictions, total = [], [], [], None
  for batch in batches:
    images.append(batch["image"])
    truth.append(batch["panoptic"])
    predictions.append(batch["prediction"])
    total = exp.task.accumulate(total, batch["stats"])
  names = list(exp.task.class_names)
  ap50 = [
    coco_mask_ap([p], [g], class_names=names)["AP50"]
    for p, g in zip(total["predictions"], total["ground_truth"], strict=True)
  ]
  return {
    "images": np.concatenate(images),
    "truth": np.concatenate(truth),
    "predictions": np.concatenate(predictions),
    "detections": total["predictions"],
    "ground_truth": total["ground_truth"],
    "scores": exp.task.scores(total),
    "ap50": np.asarray(ap50, np.float64),
    "class_names": tuple(names),
    "step": step,
  }


def panoptic_results(
  workdir: PathLike,
  *,
  split: str | None = None,
  checkpoint: str | int = "best",
  limit: int | None = None,
) -> dict[str, Any]:
  """A panoptic run's predictions on a split, image by image, with PQ overall and per image (to
  find the failures). Arguments as in `confusion`.

  Returns:
    `images: u8[N,H,W,3]`, `truth` and `predictions: i32[N,H,W]` (panoptic ids); `scores`, the
    task's scores over these images; `pq: f64[N]`, each image's PQ (averaged over the classes
    present in its truth or prediction; NaN for none); `class_names`, `things`, `stuff`; `step`.
  """
  exp, step, batches = _predictions(workdir, split, checkpoint, limit)
  task = exp.task
  images, truth, predictions, per_image, total = [], [], [], [], None
  for batch in batches:
    images.append(batch["image"])
    truth.append(batch["panoptic"])
    predictions.append(batch["prediction"])
    total = task.accumulate(total, batch["stats"])
    for pred, gt in zip(batch["prediction"], batch["panoptic"], strict=True):
      stats = panoptic_stats(
        pred,
        gt,
        num_classes=task.num_classes,
        things=task.things,
        stuff=task.stuff,
        ignore_index=task.ignore_index,
      )
      scores = panoptic_scores(stats, things=task.things, stuff=task.stuff)
      per_image.append(scores["pq"] if scores["n"] else np.nan)
  return {
    "images": np.concatenate(images),
    "truth": np.concatenate(truth),
    "predictions": np.concatenate(predictions),
    "scores": task.scores(total),
    "pq": np.asarray(per_image, np.float64),
    "class_names": task.dataset.class_names,
    "things": task.things,
    "stuff": task.stuff,
    "step": step,
  }

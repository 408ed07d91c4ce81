"""Sweeps: one experiment trained under several variants, and the table that compares them.

A variant is `{"name": "ce_median", "loss.terms": {"ce": {"weight": 1.0}}, ...}`: a name and
flattened config overrides, applied to the base config (a key given whole, such as `loss.terms`,
replaces the base's value whole). With `seeds=k` each variant runs k times, with seeds
`config.seed + 0 .. k-1`. Every run gets its own workdir under the sweep's:

  <workdir>/<name>/ (or <name>_seed<k>/)   an ordinary segjax workdir
  <workdir>/summary.csv, summary.md        one row per variant, seeds aggregated

Rerunning a sweep skips the finished runs and resumes the others from their checkpoints.
"""

import dataclasses
import hashlib
import importlib.util
import json
import pathlib
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import ml_collections
import numpy as np

from segjax import config as config_lib
from segjax import runs
from segjax.errors import InputError
from segjax.train.logging import read_metrics

if TYPE_CHECKING:
  import pandas

# A class is rare when it covers less than this fraction of the train split's labelled pixels.
RARE_FRACTION = 0.02
# Spread over seeds is the sample standard deviation (ddof=1): NaN for a single seed.
STD_DDOF = 1


@dataclasses.dataclass(frozen=True, eq=False)  # runs compare by identity
class Run:
  """One training run of a sweep: a variant under one seed."""

  variant: str
  config: ml_collections.ConfigDict
  workdir: pathlib.Path


def load_variants(config_file: str, only: Sequence[str] | None = None) -> list[dict[str, Any]]:
  """The variants that `sweep()` of an experiment file returns.

  Args:
    config_file: the `--config` path, optionally with its argument (`experiments/x.py:tiny`).
    only: keep these variants (by name, in the file's order); None keeps all.
  """
  path = config_file.split(":", 1)[0]
  module = config_lib.load_experiment(path)
  if not callable(getattr(module, "sweep", None)):
    raise InputError(
      f"{path} has no sweep() function: segjax sweep needs one that returns the variants, "
      'a list of {"name": ..., "config.key": value, ...} (see experiments/loss_ablation_shapes.py).'
    )
  variants = module.sweep()
  if only is None:
    return variants
  names = [v.get("name") for v in variants]
  for name in only:
    if name not in names:
      raise InputError(f"{path}'s sweep() has no variant {name!r}; it has {names}.")
  return [v for v in variants if v.get("name") in only]


def variant_config(
  base: ml_collections.ConfigDict, overrides: Mapping[str, Any]
) -> ml_collections.ConfigDict:
  """A copy of `base` with flattened `overrides` set; keys are checked later by `validate`."""
  config = base.copy_and_resolve_references()
  with config.unlocked():
    for key, value in overrides.items():
      *parents, leaf = key.split(".")
      node = config
      try:
        for part in parents:
          node = node[part]
        node[leaf] = value
      except (KeyError, AttributeError, TypeError) as error:
        message = error.args[0] if error.args else error
        raise InputError(f"config.{key}={value!r} cannot be set: {message}") from error
  return config


def plan(
  base: ml_collections.ConfigDict,
  variants: Sequence[Mapping[str, Any]],
  workdir: str | pathlib.Path,
  *,
  seeds: int = 1,
) -> list[Run]:
  """Every run of the sweep, each config validated, before anything trains.

  Raises:
    InputError: naming the variant, for a missing or repeated name or a bad key or value.
  """
  if seeds < 1:
    raise InputError(f"seeds={seeds}: a sweep needs at least one seed per variant.")
  if not variants:
    raise InputError("The sweep has no variants.")
  names = [v.get("name") for v in variants]
  for name in names:
    if not isinstance(name, str) or not name or "/" in name:
      raise InputError(f'Variant name {name!r}: each variant needs a "name" usable as a folder.')
    if names.count(name) > 1:
      raise InputError(f"Variant name {name!r} is used twice: names must be unique.")
  out = []
  for variant in variants:
    name = variant["name"]
    overrides = {k: v for k, v in variant.items() if k != "name"}
    for k in range(seeds):
      try:
        config = variant_config(base, overrides)
        config.seed = base.seed + k
        config_lib.validate(config)
      except InputError as error:
        raise InputError(f"Variant {name!r}: {error}") from error
      folder = name if seeds == 1 else f"{name}_seed{k}"
      out.append(Run(name, config, pathlib.Path(workdir) / folder))
  return out


def is_finished(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> bool:
  """Whether the run in `workdir` got to its end: an evaluation at step `config.train.steps`."""
  if not (pathlib.Path(workdir) / "metrics.jsonl").is_file():
    return False
  return any(
    r["split"] == config.eval.split and r["step"] == config.train.steps
    for r in read_metrics(workdir)
  )


def _check_same_config(run: Run) -> None:
  """Refuses a run folder that holds another config: its results would pass for this variant's."""
  path = run.workdir / "config.json"
  if not path.is_file():
    return
  saved = config_lib.flatten(json.loads(path.read_text()))
  wanted = config_lib.flatten(json.loads(run.config.to_json_best_effort()))
  differing = sorted(k for k in saved.keys() | wanted.keys() if saved.get(k) != wanted.get(k))
  if differing:
    raise InputError(
      f"{run.workdir} holds a run of another config (differing: {', '.join(differing)}); "
      "delete it, or give the sweep another --workdir."
    )


def run_sweep(
  base_config: ml_collections.ConfigDict,
  variants: Sequence[Mapping[str, Any]],
  workdir: str | pathlib.Path,
  *,
  seeds: int = 1,
  vectorized: bool = False,
) -> list[dict[str, Any]]:
  """Trains every variant that has not finished, then writes and prints the summary.

  Args:
    base_config: the experiment's config (with any command-line overrides); a variant's override
      of the same key wins.
    variants: `{"name": str, **flattened overrides}` each.
    workdir: the sweep's folder; each run trains in `<workdir>/<name>[_seed<k>]`.
    seeds: runs per variant, with seeds `base_config.seed + k`, k < seeds.
    vectorized: train the unfinished runs together with
      `segjax.train.vectorized.train_variants` instead of one after another.

  Returns:
    The rows of `summary.csv`, best mIoU first (see `summarize`).
  """
  planned = plan(base_config, variants, workdir, seeds=seeds)
  for run in planned:
    _check_same_config(run)
  if importlib.util.find_spec("pandas") is None:  # the summary needs it: fail before training
    raise InputError("segjax sweep needs pandas: pip install -e '.[notebook]'.")
  rare = rare_classes(base_config)
  todo = [run for run in planned if not is_finished(run.config, run.workdir)]
  if len(todo) < len(planned):
    skipped = [r.workdir.name for r in planned if r not in todo]
    print(f"Finished before, skipped: {', '.join(skipped)}.")
  start = time.perf_counter()

  if todo and vectorized:
    _train_vectorized(todo, pathlib.Path(workdir))
  else:
    from segjax.train.loop import train

    for i, run in enumerate(todo, 1):
      print(f"[{i}/{len(todo)}] {run.workdir.name} -> {run.workdir}", flush=True)
      try:
        train(run.config, str(run.workdir))
      except FloatingPointError as error:  # a diverging loss is a result: the others still run
        print(f"{run.workdir.name} diverged: {error}")
        continue
      if not is_finished(run.config, run.workdir):  # stopped by a signal: honour it
        print(f"Stopped during {run.workdir.name}; rerun the same command to resume.")
        break
  if todo:
    print(f"Trained {len(todo)} runs in {time.perf_counter() - start:.0f} s.")

  finished = [run for run in planned if is_finished(run.config, run.workdir)]
  if not finished:
    raise InputError(f"No run of the sweep in {workdir} has finished; nothing to summarise.")
  unfinished = [r.workdir.name for r in planned if r not in finished]
  summary, notes = summarize(finished, base_config, rare)
  if unfinished:
    notes.append(f"Not finished, left out: {', '.join(unfinished)} (rerun to finish them).")
  table = markdown(summary, notes)
  out = pathlib.Path(workdir)
  summary.to_csv(out / "summary.csv", index=False)
  (out / "summary.md").write_text(table)
  print(table, end="")
  return summary.to_dict("records")


def _train_vectorized(todo: Sequence[Run], workdir: pathlib.Path) -> None:
  """Trains the runs of each seed together; `train_variants` takes variants of one seed only."""
  try:
    from segjax.train.vectorized import train_variants
  except ImportError as error:
    raise InputError(f"--vectorized needs segjax.train.vectorized: {error}") from error
  for seed in sorted({r.config.seed for r in todo}):
    group = [r for r in todo if r.config.seed == seed]
    names = [r.workdir.name for r in group]
    # The stacked state is only valid for these runs in this order: another set of unfinished
    # runs (a variant added, or finished alone) gets its own checkpoint folder.
    key = hashlib.sha1(json.dumps(names).encode()).hexdigest()[:8]
    print(f"Training {len(group)} runs together: {', '.join(names)}.", flush=True)
    train_variants(
      [r.config for r in group],
      [str(r.workdir) for r in group],
      group_dir=str(workdir / "_vectorized" / f"seed{seed}_{key}"),
    )
    if not all(is_finished(r.config, r.workdir) for r in group):  # stopped by a signal
      print(f"Stopped during the seed-{seed} group; rerun the same command to resume.")
      return


def rare_classes(config: ml_collections.ConfigDict) -> dict[str, float]:
  """The classes below `RARE_FRACTION` of the train split's labelled pixels, with their fraction."""
  from segjax.data.stats import train_class_counts

  dataset, counts = train_class_counts(config.data)
  fractions = counts / max(counts.sum(), 1)
  return {
    name: float(f)
    for name, f in zip(dataset.class_names, fractions, strict=True)
    if f < RARE_FRACTION
  }


def summarize(
  finished: Sequence[Run], base_config: ml_collections.ConfigDict, rare: Mapping[str, float]
) -> tuple["pandas.DataFrame", list[str]]:
  """Final scores of the finished runs (read back with `runs.load`), aggregated over seeds.

  Args:
    finished: runs with an evaluation at their last step.
    base_config: the sweep's base config (evaluation split and steps, for the notes).
    rare: the rare classes and their pixel fractions, from `rare_classes`.

  Returns:
    One row per variant, best final mIoU first: `variant`, `best` (the top row), `seeds`, then
    `<score>_mean` and `<score>_std` for `miou`, `boundary_iou`, `rare_iou` (the mean IoU of the
    rare classes, NaN classes skipped), `iou/<class>` and `steps_per_sec`. And notes for the table.
  """
  import pandas as pd

  frame = runs.load([r.workdir for r in finished])
  frame["variant"] = [r.variant for r in finished]
  classes = [c.removeprefix("final/per_class_iou/") for c in frame if "final/per_class_iou/" in c]
  scores = pd.DataFrame(
    {
      "variant": frame["variant"],
      "miou": frame["final/miou"],
      "boundary_iou": frame["final/boundary_iou"],
      "rare_iou": frame[[f"final/per_class_iou/{c}" for c in rare]].mean(axis=1),
      **{f"iou/{c}": frame[f"final/per_class_iou/{c}"] for c in classes},
      "steps_per_sec": frame["steps_per_sec"],
    }
  )
  grouped = scores.groupby("variant", sort=False)
  means, stds = grouped.mean().add_suffix("_mean"), grouped.std(ddof=STD_DDOF).add_suffix("_std")
  summary = pd.concat([grouped.size().rename("seeds"), means, stds], axis=1)
  columns = ["seeds"] + [f"{s}_{a}" for s in scores.columns[1:] for a in ("mean", "std")]
  summary = summary[columns].sort_values("miou_mean", ascending=False, kind="stable")
  summary.insert(0, "best", [i == 0 for i in range(len(summary))])
  summary = summary.reset_index()

  seeds = sorted({r.config.seed for r in finished})
  spread = (
    f"seeds {', '.join(map(str, seeds))}, mean ± sample std (ddof={STD_DDOF})"
    if len(seeds) > 1
    else f"seed {seeds[0]}"
  )
  rare_text = ", ".join(f"{c} {f:.2%}" for c, f in rare.items()) or "none"
  notes = [
    f"Final evaluation on {base_config.eval.split} at step {base_config.train.steps}; {spread}.",
    f"rare = mean IoU of the classes below {RARE_FRACTION:.0%} of the train split's labelled "
    f"pixels: {rare_text}.",
    "Per-class columns: final IoU (mean over seeds); steps/s: mean of the train records'.",
  ]
  return summary, notes


def markdown(summary: "pandas.DataFrame", notes: Sequence[str]) -> str:
  """`summary` as an aligned Markdown table (scores with ± std when there are seeds), then notes."""

  def cell(row, score: str, spread: bool = True) -> str:
    mean, std = row[f"{score}_mean"], row[f"{score}_std"]
    if np.isnan(mean):
      return "n/a"
    digits = 2 if score == "steps_per_sec" else 4
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if spread and not np.isnan(std) else "")

  classes = [c[4:-5] for c in summary if c.startswith("iou/") and c.endswith("_mean")]
  header = ["variant", "mIoU", "boundary IoU", "rare IoU", *classes, "steps/s"]
  rows = []
  for _, row in summary.iterrows():
    rows.append(
      [
        row["variant"] + (" (best)" if row["best"] else ""),
        cell(row, "miou"),
        cell(row, "boundary_iou"),
        cell(row, "rare_iou"),
        *(cell(row, f"iou/{c}", spread=False) for c in classes),
        cell(row, "steps_per_sec", spread=False),
      ]
    )
  widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
  line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))
  lines = [line(header) + " |", "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
  lines += [line(r) + " |" for r in rows]
  return "\n".join([*lines, "", *notes]) + "\n"

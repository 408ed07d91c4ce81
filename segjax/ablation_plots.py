"""Plots that compare the runs of a sweep: its table, curves, per-class IoU and predictions.

For notebooks such as `notebooks/loss_ablation.ipynb`. A sweep's folder holds one workdir per
run, `<name>` or, with several seeds, `<name>_seed<k>` (see `segjax.sweep`); the functions here
group runs by variant (the name without `_seed<k>`) and give every variant the same colour in
every plot. matplotlib and pandas are optional dependencies (the `notebook` extra), so they are
imported where they are used.
"""

import os
import pathlib
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from segjax import runs, viz
from segjax.errors import InputError

if TYPE_CHECKING:
  import matplotlib.axes
  import matplotlib.figure
  import pandas

PathLike = str | os.PathLike

_SEED_SUFFIX = re.compile(r"_seed\d+$")
# Background of the rare classes' bar groups, and the colour of their names.
RARE_SHADE = "#fff1c9"
RARE_TEXT = "#b5400a"


def variant_name(run: str) -> str:
  """A run folder's name -> its variant's: `ce_median_seed1` -> `ce_median`; `ce` stays `ce`."""
  return _SEED_SUFFIX.sub("", run)


def variant_runs(sweep: PathLike) -> dict[str, list[pathlib.Path]]:
  """The run folders of a sweep (those holding a config.json), grouped by variant.

  Returns:
    `{variant: [workdir, ...]}`, variants and their seeds' folders in sorted folder order.

  Raises:
    InputError: if no folder of `sweep` holds a config.json.
  """
  paths = sorted(p for p in pathlib.Path(sweep).iterdir() if (p / "config.json").is_file())
  if not paths:
    raise InputError(f"No run directory (one with a config.json) in {sweep}.")
  grouped: dict[str, list[pathlib.Path]] = {}
  for path in paths:
    grouped.setdefault(variant_name(path.name), []).append(path)
  return grouped


def sweep_table(sweep: PathLike, rare: Sequence[str] = ()) -> "pandas.DataFrame":
  """One row per variant of a sweep, with the columns of its `summary.csv`.

  Reads `<sweep>/summary.csv` if `segjax sweep` wrote one. Otherwise (a sweep still running, or
  runs trained by hand into one folder) builds the same columns from `runs.load`: the final
  evaluation of every run, mean and sample std (ddof=1) over a variant's seeds, plus `step`, the
  lowest final step of the variant's runs (below `train.steps` for an unfinished run).

  Args:
    sweep: the sweep's folder.
    rare: class names averaged into `rare_iou_*` when the table is built here (summary.csv has its
      own); none leaves `rare_iou_*` out.

  Returns:
    Columns `variant`, `seeds`, (`step`, built here only), `<score>_mean` and `<score>_std` for
    `miou`, `boundary_iou`, (`rare_iou`), `iou/<class>` and `steps_per_sec`; best mIoU first.
  """
  import pandas as pd

  path = pathlib.Path(sweep) / "summary.csv"
  if path.is_file():
    table = pd.read_csv(path)
  else:
    frame = runs.load(str(pathlib.Path(sweep) / "*"))
    if "final/miou" not in frame:
      raise InputError(f"No run in {sweep} has been evaluated yet.")
    prefix = "final/per_class_iou/"
    classes = [c.removeprefix(prefix) for c in frame if c.startswith(prefix)]
    scores = {
      "miou": frame["final/miou"],
      "boundary_iou": frame.get("final/boundary_iou", np.nan),
    }
    if rare:
      scores["rare_iou"] = frame[[f"final/per_class_iou/{c}" for c in rare]].mean(axis=1)
    scores.update({f"iou/{c}": frame[f"final/per_class_iou/{c}"] for c in classes})
    scores["steps_per_sec"] = frame["steps_per_sec"]
    values = pd.DataFrame(scores)
    variant = frame["run"].map(variant_name).rename("variant")
    grouped = values.groupby(variant, sort=False)
    means, stds = grouped.mean().add_suffix("_mean"), grouped.std(ddof=1).add_suffix("_std")
    steps = frame["final/step"].groupby(variant, sort=False).min().rename("step")
    table = pd.concat([grouped.size().rename("seeds"), steps, means, stds], axis=1)
    columns = [f"{s}_{a}" for s in scores for a in ("mean", "std")]
    table = table.reset_index()[["variant", "seeds", "step", *columns]]
  return table.sort_values("miou_mean", ascending=False, kind="stable").reset_index(drop=True)


def classes_of(table: "pandas.DataFrame") -> list[str]:
  """The class names of a `sweep_table`'s `iou/<class>_mean` columns, in class-id order."""
  return [c[4:-5] for c in table.columns if c.startswith("iou/") and c.endswith("_mean")]


def variant_colours(variants: Sequence[str]) -> dict[str, tuple[float, float, float, float]]:
  """A distinct colour per variant, in order: tab20's ten dark colours, then its ten light ones."""
  import matplotlib

  tab20 = matplotlib.colormaps["tab20"].colors
  order = [*range(0, 20, 2), *range(1, 20, 2)]
  return {v: (*tab20[order[i % 20]], 1.0) for i, v in enumerate(variants)}


def variant_curves(sweep: PathLike) -> "pandas.DataFrame":
  """`runs.curves` of every run of a sweep, with `run` set to its variant (seeds share it)."""
  grouped = variant_runs(sweep)
  paths = [p for ps in grouped.values() for p in ps]
  names = [v for v, ps in grouped.items() for _ in ps]
  return runs.curves(paths, names=names)


def plot_curves(
  curves: "pandas.DataFrame",
  metric: str,
  split: str,
  *,
  variants: Sequence[str] | None = None,
  colours: Mapping[str, object] | None = None,
  ax: "matplotlib.axes.Axes | None" = None,
  legend: bool = True,
) -> "matplotlib.axes.Axes":
  """One line per variant: `metric` logged on `split` against the step.

  Args:
    curves: the long form of `runs.curves` (`run`, `step`, `split`, `metric`, `value`), `run`
      naming the variant (see `variant_curves`); values of one variant at one step (its seeds, or
      a step logged twice by a resumed run) are averaged.
    metric: e.g. `"loss"` or `"miou"`.
    split: e.g. `"train"` or `"validation"`.
    variants: the variants to draw, in this order (legend order); default all, in order of
      appearance.
    colours: a colour per variant; default `variant_colours(variants)`.
    ax: the axes to draw on; a new figure's by default.
    legend: draw a legend of the variants.

  Returns:
    The axes: its lines are the variants', labelled with their names.
  """
  import matplotlib.pyplot as plt

  rows = curves[(curves["metric"] == metric) & (curves["split"] == split)]
  if variants is None:
    variants = list(dict.fromkeys(rows["run"]))
  colours = variant_colours(variants) if colours is None else colours
  if ax is None:
    _, ax = plt.subplots(figsize=(7, 4))
  means = rows.groupby(["run", "step"], sort=True)["value"].mean()
  for variant in variants:
    if variant not in means.index.get_level_values("run"):
      continue
    line = means.loc[variant]
    marker = "o" if len(line) <= 12 else None  # few points (evaluations): mark each one
    ax.plot(line.index, line.to_numpy(), marker=marker, color=colours[variant], label=variant)
  ax.set(title=f"{split} {metric}", xlabel="step", ylabel=metric)
  ax.grid(alpha=0.3)
  if legend:
    ax.legend(fontsize="small")
  return ax


def plot_per_class(
  table: "pandas.DataFrame",
  class_names: Sequence[str] | None = None,
  rare: Sequence[str] = (),
  *,
  variants: Sequence[str] | None = None,
  colours: Mapping[str, object] | None = None,
  ax: "matplotlib.axes.Axes | None" = None,
) -> "matplotlib.axes.Axes":
  """Grouped bars of the final IoU: one group per class, one bar per variant.

  A class with no IoU for a variant (absent from its truth and predictions) gets no visible bar.
  With several seeds each bar has an error bar of one sample std.

  Args:
    table: a `sweep_table` (`variant`, `iou/<class>_mean`, `iou/<class>_std`).
    class_names: the groups, in this order; default `classes_of(table)`.
    rare: classes whose group is shaded and whose name is marked "(rare)".
    variants: the bars of each group, in this order; default the table's rows.
    colours: a colour per variant; default `variant_colours(variants)`.
    ax: the axes to draw on; a new figure's by default.

  Returns:
    The axes; `ax.containers` holds one bar container per variant, labelled with its name.
  """
  import matplotlib.pyplot as plt

  class_names = classes_of(table) if class_names is None else list(class_names)
  rows = table.set_index("variant")
  variants = list(rows.index) if variants is None else list(variants)
  colours = variant_colours(variants) if colours is None else colours
  if ax is None:
    bars = len(variants) * len(class_names)
    _, ax = plt.subplots(figsize=(min(max(8, 0.18 * bars + 2), 15), 4.5))
  x = np.arange(len(class_names))
  width = 0.8 / len(variants)
  for i, name in enumerate(class_names):
    if name in rare:
      ax.axvspan(i - 0.5, i + 0.5, color=RARE_SHADE, zorder=0)
  for k, variant in enumerate(variants):
    heights = rows.loc[variant, [f"iou/{c}_mean" for c in class_names]].to_numpy(float)
    stds = [rows.loc[variant].get(f"iou/{c}_std", np.nan) for c in class_names]
    errors = np.asarray(stds, float)
    ax.bar(
      x - 0.4 + (k + 0.5) * width,
      np.nan_to_num(heights),  # NaN: no bar, but one bar per class all the same
      width,
      yerr=None if np.all(np.isnan(errors)) else np.nan_to_num(errors),
      error_kw={"elinewidth": 0.8, "ecolor": "0.35"},
      color=colours[variant],
      label=variant,
      zorder=2,
    )
  labels = [f"{c}\n(rare)" if c in rare else c for c in class_names]
  ax.set_xticks(x, labels)
  for tick, name in zip(ax.get_xticklabels(), class_names, strict=True):
    if name in rare:
      tick.set(color=RARE_TEXT, fontweight="bold")
  ax.set(xlim=(-0.5, len(class_names) - 0.5), ylim=(0, 1), ylabel="final IoU")
  ax.set_title("final IoU per class" + (" (rare classes shaded)" if rare else ""))
  ax.grid(axis="y", alpha=0.3, zorder=1)
  ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1), title="variant")
  return ax


def images_with_classes(labels: np.ndarray, class_ids: Sequence[int], count: int) -> np.ndarray:
  """Indices of up to `count` images that show the given classes best.

  Takes turns between the classes, in the order given (say rarest first): each turn picks the
  not yet chosen image with the most pixels of that class. A class no image holds is skipped;
  fewer than `count` images come back when fewer hold any of the classes.

  Args:
    labels: int[N,H,W] class maps.
    class_ids: the classes to show.
    count: at most this many indices.

  Returns:
    i64[<=count] image indices, in the order picked.
  """
  pixels = np.stack([(labels == c).sum(axis=(1, 2)) for c in class_ids], axis=1)  # [N, K]
  chosen: list[int] = []
  while len(chosen) < count:
    picked = False
    for k in range(len(class_ids)):
      if len(chosen) == count:
        break
      column = pixels[:, k].astype(np.float64)
      column[chosen] = 0
      if column.max() > 0:
        chosen.append(int(column.argmax()))
        picked = True
    if not picked:
      break
  return np.asarray(chosen, np.int64)


def class_legend(fig: "matplotlib.figure.Figure", class_names: Sequence[str], rare=()) -> None:
  """A legend of the class colours (`viz.palette`) along the bottom of `fig`; rare ones marked."""
  from matplotlib.patches import Patch

  colours = viz.palette(len(class_names))[: len(class_names)] / 255
  handles = [
    Patch(color=rgb, label=f"{name} (rare)" if name in rare else name)
    for rgb, name in zip(colours, class_names, strict=True)
  ]
  fig.legend(handles=handles, loc="lower center", ncol=min(len(class_names), 8), frameon=False)


def plot_variant_predictions(
  images: np.ndarray,
  labels: np.ndarray,
  predictions: Mapping[str, np.ndarray],
  class_names: Sequence[str],
  *,
  rare: Sequence[str] = (),
  titles: Sequence[str] | None = None,
  scores: Mapping[str, Sequence[float]] | None = None,
  alpha: float = 1.0,
  ignore_index: int = 255,
) -> "matplotlib.figure.Figure":
  """A grid of the variants' predictions on the same images.

  Rows are images; columns the image, its truth, then each variant's prediction: class maps in
  the colours of `viz.palette`, drawn over the image with `viz.overlay` (by default opaque, which
  shows thin and small classes best; void truth shows the bare image). A legend of the class
  colours runs along the bottom.

  Args:
    images: u8[N,H,W,3].
    labels: int[N,H,W] ground truth, `ignore_index` for void.
    predictions: `{variant: int[N,H,W]}`, one column each, in this order.
    class_names: C names, for the colours and the legend.
    rare: classes marked "(rare)" in the legend.
    titles: N row labels (e.g. an image id).
    scores: `{variant: f[N]}`, written under each prediction (e.g. the image's mIoU).
    alpha: opacity of the class colours over the image; 1 draws the class colours alone.
    ignore_index: void label.

  Returns:
    The figure, with N x (2 + len(predictions)) axes.
  """
  import matplotlib.pyplot as plt

  n, c = len(labels), len(class_names)
  columns = ["image", "truth", *predictions]
  size = 1.5
  fig, axes = plt.subplots(
    n, len(columns), figsize=(size * len(columns), size * n + 0.9), squeeze=False
  )
  for i in range(n):
    truth = np.where(labels[i] == ignore_index, 255, labels[i])
    panels = [images[i], viz.overlay(images[i], truth, c, alpha=alpha)]
    panels += [viz.overlay(images[i], p[i], c, alpha=alpha) for p in predictions.values()]
    for j, (ax, panel) in enumerate(zip(axes[i], panels, strict=True)):
      ax.imshow(panel, interpolation="nearest")
      ax.set_xticks([])
      ax.set_yticks([])
      if i == 0:
        ax.set_title(columns[j], fontsize="medium")
      if scores is not None and j >= 2:
        ax.set_xlabel(f"mIoU {scores[columns[j]][i]:.2f}", fontsize="small")
    if titles is not None:
      axes[i, 0].set_ylabel(titles[i])
  class_legend(fig, class_names, rare)
  fig.tight_layout(rect=(0, 0.5 / fig.get_figheight(), 1, 1))
  return fig

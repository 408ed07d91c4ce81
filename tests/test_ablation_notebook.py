"""notebooks/loss_ablation.ipynb against a tiny sweep, and the plots of segjax.ablation_plots.

The expectations are read from the runs' own files (metrics.jsonl, summary.csv) line by line.
"""

import csv
import json
import pathlib
import shutil

import matplotlib
import nbclient
import nbformat
import numpy as np
import pytest
from experiment_files import load_experiment

from segjax import ablation_plots
from segjax.sweep import run_sweep

pytestmark = pytest.mark.slow

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks/loss_ablation.ipynb"
VARIANTS = ("ce", "ce_median", "dice")
CLASSES = ("sky", "road", "building", "pole", "car", "person", "sign")
RARE = ("pole", "sign")  # below 2% of shapes/64's train pixels (see tests/test_sweep.py)


@pytest.fixture(scope="module")
def sweep_dir(tfds_dir, tmp_path_factory) -> pathlib.Path:
  """Three variants of the loss ablation's `:tiny` config (4 steps), one seed each."""
  module = load_experiment("loss_ablation_shapes")
  base = module.get_config("tiny")
  base.data.tfds_dir = tfds_dir
  workdir = tmp_path_factory.mktemp("ablation")
  run_sweep(base, [v for v in module.sweep() if v["name"] in VARIANTS], workdir)
  return workdir


@pytest.fixture(autouse=True)
def close_figures():
  yield
  import matplotlib.pyplot as plt

  plt.close("all")


def records(workdir: pathlib.Path) -> list[dict]:
  return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def final_eval(workdir: pathlib.Path) -> dict:
  return [r for r in records(workdir) if r["split"] == "validation"][-1]


def summary_rows(sweep: pathlib.Path) -> list[dict]:
  with (sweep / "summary.csv").open() as f:
    return list(csv.DictReader(f))


@pytest.fixture
def two_seed_sweep(sweep_dir, tmp_path) -> pathlib.Path:
  """A sweep folder whose variant `x` has two seeds: the `ce` and `dice` runs' files."""
  for source, target in (("ce", "x_seed0"), ("dice", "x_seed1"), ("ce_median", "y")):
    (tmp_path / target).mkdir()
    for name in ("config.json", "metrics.jsonl"):
      shutil.copy(sweep_dir / source / name, tmp_path / target / name)
  return tmp_path


def test_notebook_executes_against_a_sweep_and_draws(sweep_dir, kernel, monkeypatch):
  nb = nbformat.read(NOTEBOOK, as_version=4)
  code = [cell for cell in nb.cells if cell.cell_type == "code"]
  assert all(not cell.outputs and cell.execution_count is None for cell in code), (
    f"{NOTEBOOK.name} is committed with outputs: clear them."
  )
  assert code[0].source.splitlines()[-2:] == [
    'SWEEP = os.environ.get("SEGJAX_SWEEP", "../runs/ablation")',
    'LIMIT = int(os.environ.get("SEGJAX_LIMIT", "0")) or None',
  ]
  monkeypatch.setenv("SEGJAX_SWEEP", str(sweep_dir))
  monkeypatch.setenv("SEGJAX_LIMIT", "16")
  # Sends each figure to the notebook as a PNG (an inherited MPLBACKEND=Agg would hide them).
  monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")

  client = nbclient.NotebookClient(
    nb, kernel_name=kernel, timeout=180, resources={"metadata": {"path": str(NOTEBOOK.parent)}}
  )
  client.execute()  # raises CellExecutionError, with the cell and its traceback, if a cell fails

  outputs = [output for cell in code for output in cell.outputs]
  figures = [o for o in outputs if "image/png" in o.get("data", {})]
  assert len(figures) >= 3, f"{len(figures)} figures: curves, per-class bars and predictions"
  text = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)
  assert "rare classes (below 2% of the train pixels): pole 0.85%, sign 0.25%" in text
  assert all(v in text for v in VARIANTS)


def test_sweep_table_reads_summary_csv_best_first(sweep_dir):
  table = ablation_plots.sweep_table(sweep_dir)
  rows = summary_rows(sweep_dir)
  assert list(table["variant"]) == [r["variant"] for r in rows]
  assert sorted(table["variant"]) == sorted(VARIANTS)
  assert list(table["miou_mean"]) == sorted(table["miou_mean"], reverse=True)
  for _, row in table.iterrows():
    evaluation = final_eval(sweep_dir / row["variant"])
    assert row["miou_mean"] == pytest.approx(evaluation["miou"], abs=1e-12)
    assert row["iou/sign_mean"] == pytest.approx(evaluation["per_class_iou"]["sign"], abs=1e-12)


def test_sweep_table_without_summary_averages_each_variants_seeds(two_seed_sweep):
  table = ablation_plots.sweep_table(two_seed_sweep, rare=RARE).set_index("variant")
  assert sorted(table.index) == ["x", "y"]
  assert table.loc["x", "seeds"] == 2 and table.loc["y", "seeds"] == 1
  assert table.loc["x", "step"] == 4
  runs = [final_eval(two_seed_sweep / name) for name in ("x_seed0", "x_seed1")]
  values = {
    "miou": [r["miou"] for r in runs],
    "boundary_iou": [r["boundary_iou"] for r in runs],
    "rare_iou": [np.mean([r["per_class_iou"][c] for c in RARE]) for r in runs],
    **{f"iou/{c}": [r["per_class_iou"][c] for r in runs] for c in CLASSES},
  }
  for key, pair in values.items():
    assert table.loc["x", f"{key}_mean"] == pytest.approx(np.mean(pair), abs=1e-12), key
    assert table.loc["x", f"{key}_std"] == pytest.approx(np.std(pair, ddof=1), abs=1e-12), key
  assert np.isnan(table.loc["y", "miou_std"])  # one seed: no spread
  assert ablation_plots.classes_of(table.reset_index()) == list(CLASSES)


def test_plot_curves_draws_one_line_per_variant_averaging_seeds(two_seed_sweep):
  curves = ablation_plots.variant_curves(two_seed_sweep)
  ax = ablation_plots.plot_curves(curves, "loss", "train", variants=["y", "x"])
  assert [line.get_label() for line in ax.get_lines()] == ["y", "x"]
  assert [t.get_text() for t in ax.get_legend().get_texts()] == ["y", "x"]
  train = {
    name: {r["step"]: r["loss"] for r in records(two_seed_sweep / name) if r["split"] == "train"}
    for name in ("x_seed0", "x_seed1", "y")
  }
  y_line, x_line = ax.get_lines()
  assert list(x_line.get_xdata()) == sorted(train["x_seed0"]) == [2, 4]
  expected = [(train["x_seed0"][s] + train["x_seed1"][s]) / 2 for s in (2, 4)]
  np.testing.assert_allclose(x_line.get_ydata(), expected, rtol=1e-12)
  np.testing.assert_allclose(y_line.get_ydata(), [train["y"][s] for s in (2, 4)], rtol=1e-12)
  colours = ablation_plots.variant_colours(["y", "x"])
  assert matplotlib.colors.same_color(x_line.get_color(), colours["x"])
  assert not matplotlib.colors.same_color(x_line.get_color(), y_line.get_color())


def test_plot_per_class_draws_a_bar_per_variant_and_class(sweep_dir):
  table = ablation_plots.sweep_table(sweep_dir)
  ax = ablation_plots.plot_per_class(table, rare=RARE)
  rows = summary_rows(sweep_dir)
  assert [c.get_label() for c in ax.containers] == [r["variant"] for r in rows]
  assert sum(len(c) for c in ax.containers) == len(VARIANTS) * len(CLASSES)
  for container, row in zip(ax.containers, rows, strict=True):
    heights = [bar.get_height() for bar in container]
    expected = np.nan_to_num([float(row[f"iou/{c}_mean"]) for c in CLASSES])
    np.testing.assert_allclose(heights, expected, rtol=1e-12)
    # Bars of a group sit side by side around their class's tick.
    centres = [bar.get_x() + bar.get_width() / 2 for bar in container]
    np.testing.assert_allclose(np.round(centres), np.arange(len(CLASSES)))
  ticks = [t.get_text() for t in ax.get_xticklabels()]
  assert ticks == [f"{c}\n(rare)" if c in RARE else c for c in CLASSES]
  assert [t.get_text() for t in ax.get_legend().get_texts()] == [r["variant"] for r in rows]


def test_images_with_classes_takes_turns_rarest_first():
  pixels = {3: [0, 5, 2, 0, 0], 6: [1, 0, 0, 0, 4]}  # per image, of classes 3 and 6
  labels = np.zeros((5, 4, 4), np.uint8)
  for c, counts in pixels.items():
    for i, n in enumerate(counts):
      flat = labels[i].reshape(-1)
      free = np.flatnonzero(flat == 0)[:n]
      flat[free] = c
  assert ablation_plots.images_with_classes(labels, [3, 6], count=10).tolist() == [1, 4, 2, 0]
  assert ablation_plots.images_with_classes(labels, [6, 3], count=2).tolist() == [4, 1]
  assert ablation_plots.images_with_classes(labels, [5], count=3).tolist() == []


def test_plot_variant_predictions_grid():
  n, h, w = 2, 6, 5
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
  labels = rng.integers(0, 7, (n, h, w)).astype(np.uint8)
  labels[:, 0] = 255  # a void row
  names = ["b", "a", "c"]
  predictions = {v: rng.integers(0, 7, (n, h, w)) for v in names}
  scores = {v: [0.25, 0.5] for v in names}
  fig = ablation_plots.plot_variant_predictions(
    images, labels, predictions, CLASSES, rare=RARE, titles=["#3", "#9"], scores=scores, alpha=1.0
  )
  axes = np.reshape(fig.axes, (n, 2 + len(names)))
  assert [ax.get_title() for ax in axes[0]] == ["image", "truth", *names]
  assert [ax.get_ylabel() for ax in axes[:, 0]] == ["#3", "#9"]
  assert axes[1, 3].get_xlabel() == "mIoU 0.50"
  truth = axes[1, 1].get_images()[0].get_array()
  np.testing.assert_array_equal(truth[0], images[1, 0])  # void: the bare image
  sky = labels[1] == 0  # class 0's colour is PASCAL VOC's first: dark red
  np.testing.assert_array_equal(truth[sky], np.broadcast_to([128, 0, 0], truth[sky].shape))
  np.testing.assert_array_equal(axes[0, 0].get_images()[0].get_array(), images[0])
  legend = [t.get_text() for t in fig.legends[0].get_texts()]
  assert legend == [f"{c} (rare)" if c in RARE else c for c in CLASSES]

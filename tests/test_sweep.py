"""segjax.sweep and runs.load against the runs' own metrics.jsonl, read here line by line."""

import csv
import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
from experiment_files import load_experiment

from segjax import runs
from segjax.errors import InputError
from segjax.sweep import run_sweep

pytestmark = pytest.mark.slow

REPO = pathlib.Path(__file__).resolve().parents[1]
EXPERIMENT = REPO / "experiments/loss_ablation_shapes.py"
CLASSES = ("sky", "road", "building", "pole", "car", "person", "sign")
# Below 2% of the labelled pixels of shapes/64's train split (`segjax stats`): 0.85% and 0.25%;
# person (2.02%) is just above.
RARE = ("pole", "sign")


def experiment():
  return load_experiment("loss_ablation_shapes")


def variants(*names: str) -> list[dict]:
  return [v for v in experiment().sweep() if v["name"] in names]


@pytest.fixture(scope="module")
def base(tfds_dir):
  config = experiment().get_config("tiny")
  config.data.tfds_dir = tfds_dir
  return config


@pytest.fixture(scope="module")
def swept(base, tmp_path_factory):
  """Two variants, two seeds each: the sweep's folder and what `run_sweep` returned."""
  workdir = tmp_path_factory.mktemp("sweep")
  rows = run_sweep(base, variants("ce", "ce_median"), workdir, seeds=2)
  return workdir, rows


def final_eval(workdir: pathlib.Path) -> dict:
  """The last validation record at the last step, from the raw JSON lines."""
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  return [r for r in records if r["split"] == "validation" and r["step"] == 4][-1]


def scores(workdir: pathlib.Path) -> dict[str, float]:
  """What the summary should aggregate for one run, computed from its metrics.jsonl."""
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  evaluation = final_eval(workdir)
  out = {
    "miou": evaluation["miou"],
    "boundary_iou": evaluation["boundary_iou"],
    "rare_iou": float(np.mean([evaluation["per_class_iou"][c] for c in RARE])),
    "steps_per_sec": float(np.mean([r["steps_per_sec"] for r in records if r["split"] == "train"])),
  }
  out.update({f"iou/{c}": evaluation["per_class_iou"][c] for c in CLASSES})
  return out


def test_summary_is_mean_and_std_over_seeds_of_each_runs_metrics(swept):
  workdir, rows = swept
  assert sorted(p.name for p in workdir.iterdir() if p.is_dir()) == [
    "ce_median_seed0",
    "ce_median_seed1",
    "ce_seed0",
    "ce_seed1",
  ]
  with (workdir / "summary.csv").open() as f:
    table = list(csv.DictReader(f))
  assert [r["variant"] for r in table] == [r["variant"] for r in rows]
  assert {r["variant"] for r in table} == {"ce", "ce_median"}
  for row, returned in zip(table, rows, strict=True):
    per_seed = [scores(workdir / f"{row['variant']}_seed{k}") for k in (0, 1)]
    assert int(row["seeds"]) == returned["seeds"] == 2
    for key in per_seed[0]:
      values = [s[key] for s in per_seed]
      # ddof=1: the sample standard deviation over seeds, as the summary states.
      for stat, expected in (("mean", np.mean(values)), ("std", np.std(values, ddof=1))):
        assert float(row[f"{key}_{stat}"]) == pytest.approx(expected, abs=1e-12), (key, stat)
        assert returned[f"{key}_{stat}"] == pytest.approx(expected, abs=1e-12), (key, stat)
  assert float(table[0]["miou_mean"]) >= float(table[1]["miou_mean"])
  assert [r["best"] for r in table] == ["True", "False"]

  text = (workdir / "summary.md").read_text()
  best = table[0]
  assert f"| {best['variant']} (best) | {float(best['miou_mean']):.4f} ± " in text
  assert "pole 0.85%, sign 0.25%" in text and "ddof=1" in text


def test_load_keeps_the_keys_that_differ(swept):
  workdir, _ = swept
  frame = runs.load(str(workdir / "*"))  # summary.csv and summary.md are not run folders
  assert list(frame["run"]) == ["ce_median_seed0", "ce_median_seed1", "ce_seed0", "ce_seed1"]
  config_keys = [c for c in frame.columns if "/" not in c and c not in ("run", "steps_per_sec")]
  assert config_keys == ["loss.class_weights", "seed"]
  assert list(frame["seed"]) == [0, 1, 0, 1]
  for _, row in frame.iterrows():
    evaluation = final_eval(workdir / row["run"])
    assert row["final/miou"] == row["best/miou"] == evaluation["miou"]
    assert row["final/per_class_iou/sign"] == evaluation["per_class_iou"]["sign"]
    assert row["final/step"] == 4
  everything = runs.load(sorted(workdir.glob("ce_seed*")), all_keys=True)
  assert {"train.steps", "loss.terms", "data.tfds_dir"} <= set(everything.columns)
  assert everything["loss.terms"][0] == {"ce": {"weight": 1.0}}


def test_resume_trains_only_the_unfinished(swept, base, tmp_path, capsys):
  source, _ = swept
  workdir = tmp_path / "sweep"
  shutil.copytree(source, workdir)
  before = {p.parent.name: p.stat().st_mtime_ns for p in workdir.glob("*/metrics.jsonl")}
  shutil.rmtree(workdir / "ce_seed1")
  capsys.readouterr()

  run_sweep(base, variants("ce", "ce_median"), workdir, seeds=2)

  out = capsys.readouterr().out
  assert "skipped: ce_seed0, ce_median_seed0, ce_median_seed1." in out
  assert "[1/1] ce_seed1" in out
  after = {p.parent.name: p.stat().st_mtime_ns for p in workdir.glob("*/metrics.jsonl")}
  assert after.keys() == before.keys()
  assert {k for k in after if after[k] != before[k]} == {"ce_seed1"}
  # The same config, seed and data order: the rerun reproduces the deleted run's scores.
  assert final_eval(workdir / "ce_seed1")["miou"] == final_eval(source / "ce_seed1")["miou"]


def test_a_bad_variant_fails_before_anything_trains(base, tmp_path):
  grid = [*variants("ce"), {"name": "typo", "train.stpes": 3}]
  with pytest.raises(InputError, match=r"Variant 'typo': config.train.stpes is not a known key"):
    run_sweep(base, grid, tmp_path)
  bad_option = [*variants("ce"), {"name": "opt", "loss.terms": {"focal": {"weight": 1, "gama": 2}}}]
  with pytest.raises(InputError, match=r"Variant 'opt': config.loss.terms.focal.*gama"):
    run_sweep(base, bad_option, tmp_path)
  assert list(tmp_path.iterdir()) == []


def test_command_line_sweep(swept, tfds_dir, tmp_path):
  source, _ = swept
  workdir = tmp_path / "ablation"
  command = [
    sys.executable,
    "-m",
    "segjax.main",
    "sweep",
    f"--config={EXPERIMENT}:tiny",
    f"--workdir={workdir}",
    "--variants=ce,ce_median",
    f"--config.data.tfds_dir={tfds_dir}",
    "--config.loss.class_weights=inverse",  # for every variant but ce_median, which sets its own
  ]
  done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=os.environ)
  assert done.returncode == 0, done.stderr[-3000:]
  assert sorted(p.name for p in workdir.iterdir()) == [
    "ce",
    "ce_median",
    "summary.csv",
    "summary.md",
  ]
  assert (workdir / "summary.md").read_text() in done.stdout
  weights = {
    name: json.loads((workdir / name / "config.json").read_text())["loss"]["class_weights"]
    for name in ("ce", "ce_median")
  }
  assert weights == {"ce": "inverse", "ce_median": "median"}
  # The same config and seed as the in-process sweep's run: the same result.
  assert final_eval(workdir / "ce_median")["miou"] == pytest.approx(
    final_eval(source / "ce_median_seed0")["miou"], abs=1e-6
  )


def test_a_config_file_without_sweep_is_refused(tfds_dir, tmp_path):
  command = [
    sys.executable,
    "-m",
    "segjax.main",
    "sweep",
    f"--config={REPO / 'experiments/unet_shapes.py'}:tiny",
    f"--workdir={tmp_path}",
  ]
  done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=os.environ)
  assert done.returncode == 2
  assert "unet_shapes.py has no sweep() function" in done.stderr
  assert "Traceback" not in done.stderr


def test_vectorized_sweep_equals_the_sequential_one(swept, base, tmp_path, capsys):
  pytest.importorskip("segjax.train.vectorized")
  _, sequential = swept
  vectorized = run_sweep(base, variants("ce", "ce_median"), tmp_path, seeds=2, vectorized=True)
  out = capsys.readouterr().out
  # One group per seed: train_variants trains variants that differ only in the loss.
  assert "together: ce_seed0, ce_median_seed0." in out
  assert "together: ce_seed1, ce_median_seed1." in out
  assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [
    "_vectorized",
    "ce_median_seed0",
    "ce_median_seed1",
    "ce_seed0",
    "ce_seed1",
  ]
  assert [r["variant"] for r in vectorized] == [r["variant"] for r in sequential]
  for a, b in zip(vectorized, sequential, strict=True):
    for key in ("miou_mean", "miou_std", "rare_iou_mean", "iou/sky_mean"):
      assert a[key] == pytest.approx(b[key], abs=1e-5), key

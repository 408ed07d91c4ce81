"""Shared fixtures: a small `shapes` build and the tiny experiment config that trains on it."""

import json
import os
import pathlib
import subprocess
import sys
import tempfile

# Before JAX starts: compiled programs are cached across the tests of a session (and sessions).
os.environ.setdefault(
  "SEGJAX_COMPILATION_CACHE", str(pathlib.Path(tempfile.gettempdir()) / "segjax-test-xla-cache")
)

import pytest
from experiment_files import load_experiment

from segjax import runtime

runtime.configure()

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def experiment():
  """`experiment(name)`: the module `experiments/<name>.py`."""
  return load_experiment


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory) -> str:
  """A TFDS data dir holding `shapes/64`, built once per session."""
  from segjax.config import base_config
  from segjax.data import DATASETS

  path = tmp_path_factory.mktemp("tfds")
  config = base_config()
  config.data.tfds_dir, config.data.variant = str(path), "64"
  DATASETS["shapes"](config.data, "train")
  return str(path)


@pytest.fixture
def tiny_config(tfds_dir):
  """The `:tiny` variant of the U-Net experiment, reading the session's `shapes` build."""
  config = load_experiment("unet_shapes").get_config("tiny")
  config.data.tfds_dir = tfds_dir
  return config


def segjax(*args: str) -> subprocess.CompletedProcess:
  """Runs the `segjax` CLI with this interpreter, output captured as text; a failure shows the
  command and the end of its output."""
  result = subprocess.run(
    [sys.executable, "-m", "segjax.main", *args], capture_output=True, text=True
  )
  assert result.returncode == 0, f"segjax {' '.join(args)} failed:\n{result.stderr[-3000:]}"
  return result


@pytest.fixture(scope="session")
def cli():
  """`cli(*args)`: the `segjax` command line (`segjax` above)."""
  return segjax


@pytest.fixture
def cli_train(tfds_dir, tmp_path):
  """`cli_train(name, steps, *flags, evals=1)`: `segjax train` of `experiments/<name>.py:tiny`
  on the session's `shapes` (unless `flags` such as `--config.data.root=...` say otherwise),
  logging three times and evaluating `evals` times; returns the workdir and its metrics.jsonl
  records."""

  def train(name: str, steps: int, *flags: str, evals: int = 1) -> tuple[pathlib.Path, list[dict]]:
    workdir = tmp_path / "run"
    segjax(
      "train",
      f"--config={REPO}/experiments/{name}.py:tiny",
      f"--config.data.tfds_dir={tfds_dir}",
      f"--config.train.steps={steps}",
      f"--config.train.log_every={steps // 3}",
      f"--config.train.eval_every={steps // evals}",
      f"--workdir={workdir}",
      *flags,
    )
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    return workdir, [json.loads(line) for line in lines]

  return train


@pytest.fixture(scope="session")
def tiny_run_workdir(tfds_dir, tmp_path_factory) -> str:
  """A workdir of the tiny experiment trained to its end (step 4), shared by read-only tests."""
  from segjax.train.loop import train

  config = load_experiment("unet_shapes").get_config("tiny")
  config.data.tfds_dir = tfds_dir
  workdir = tmp_path_factory.mktemp("tiny_run")
  train(config, str(workdir))
  return str(workdir)


@pytest.fixture
def kernel(tmp_path, monkeypatch) -> str:
  """A `python3` kernelspec that runs this interpreter (the one with segjax installed).

  JUPYTER_PATH is searched first, so a `python3` kernel of another Python (a user's or the
  system's) cannot shadow it.
  """
  import json
  import sys

  spec = tmp_path / "jupyter/kernels/python3"
  spec.mkdir(parents=True)
  argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
  kernel_json = {"argv": argv, "display_name": "Python 3 (tests)", "language": "python"}
  (spec / "kernel.json").write_text(json.dumps(kernel_json))
  monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
  return "python3"

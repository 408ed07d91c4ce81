"""Shared fixtures: a small `shapes` build and the tiny experiment config that trains on it."""

import os
import pathlib
import tempfile

# Before JAX starts: compiled programs are cached across the tests of a session (and sessions).
os.environ.setdefault(
  "SEGJAX_COMPILATION_CACHE", str(pathlib.Path(tempfile.gettempdir()) / "segjax-test-xla-cache")
)

import pytest

from segjax import runtime

runtime.configure()

REPO = pathlib.Path(__file__).resolve().parents[1]


def load_experiment(name: str):
  """The module `experiments/<name>.py` (its get_config, VARIANTS, sweep)."""
  import importlib.util

  spec = importlib.util.spec_from_file_location(name, REPO / f"experiments/{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


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

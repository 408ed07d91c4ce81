"""The experiment files of `experiments/`, loaded as modules, as `segjax train --config` does."""

import importlib.util
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[2]


def load_experiment(name: str):
  """The module `experiments/<name>.py` (its get_config, VARIANTS, sweep)."""
  spec = importlib.util.spec_from_file_location(name, REPO / f"experiments/{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module

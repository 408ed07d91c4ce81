"""The experiment files of `experiments/`, loaded as modules, as `segjax train --config` does."""

import pathlib

from segjax.config import load_experiment as load_file

REPO = pathlib.Path(__file__).resolve().parents[2]


def load_experiment(name: str):
  """The module `experiments/<name>.py` (its get_config, VARIANTS, sweep)."""
  return load_file(REPO / f"experiments/{name}.py")

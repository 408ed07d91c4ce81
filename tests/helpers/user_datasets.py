"""Opening a data set that reads a user's directory, as `config.data.name` and `.root` name it."""

from segjax.config import base_config
from segjax.data import DATASETS, Dataset


def open_dataset(name: str, root, split: str, **data: object) -> Dataset:
  """`DATASETS[name]` on `root` for `split`, other `config.data` fields from `data`."""
  config = base_config()
  config.data.name, config.data.root = name, str(root)
  config.data.update(data)
  return DATASETS[name](config.data, split)

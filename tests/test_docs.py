"""The API page documents every public loss and metric, under its config name."""

import pathlib

import segjax.losses
import segjax.metrics

API = (pathlib.Path(__file__).resolve().parents[1] / "docs/api.md").read_text()


def test_every_public_loss_and_metric_is_documented():
  names = [n for n in segjax.losses.__all__ + segjax.metrics.__all__ if n != "LOSSES"]
  missing = [n for n in names if f"`{n}(" not in API]
  assert not missing, f"docs/api.md lacks {missing}"


def test_every_config_loss_name_is_documented():
  missing = [n for n in segjax.losses.LOSSES if f"| `{n}` |" not in API]
  assert not missing, f"docs/api.md lacks the config names {missing}"

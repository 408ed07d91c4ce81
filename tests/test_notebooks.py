"""The notebooks run top to bottom against tiny runs, in a kernel of this interpreter."""

import pathlib

import nbclient
import nbformat
import pytest

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[1] / "notebooks"


def execute(
  name: str, workdir: str, *, limit: int, kernel: str, monkeypatch, **env: str
) -> list[dict]:
  """Runs `notebooks/<name>` on `workdir`'s first `limit` validation images, with the environment
  variables `env` set; returns the outputs of its code cells. Raises CellExecutionError, with the
  cell and its traceback, if a cell fails."""
  path = NOTEBOOKS / name
  nb = nbformat.read(path, as_version=4)
  code = [cell for cell in nb.cells if cell.cell_type == "code"]
  assert all(not cell.outputs and cell.execution_count is None for cell in code), (
    f"{path.name} is committed with outputs: clear them."
  )
  monkeypatch.setenv("SEGJAX_WORKDIR", workdir)
  monkeypatch.setenv("SEGJAX_LIMIT", str(limit))
  for key, value in env.items():
    monkeypatch.setenv(key, value)
  # Headless and Agg-rendered, like Agg, but it also sends each figure to the notebook as a PNG;
  # set explicitly, since an MPLBACKEND=Agg inherited from the shell would hide every figure.
  monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
  client = nbclient.NotebookClient(
    nb, kernel_name=kernel, timeout=180, resources={"metadata": {"path": str(NOTEBOOKS)}}
  )
  client.execute()
  return [output for cell in code for output in cell.outputs]


def figures(outputs: list[dict]) -> int:
  return sum("image/png" in o.get("data", {}) for o in outputs)


def text(outputs: list[dict]) -> str:
  return "".join(o.get("text", "") for o in outputs)


def trained_workdir(experiment, tfds_dir, tmp_path_factory, name: str) -> str:
  """A workdir of experiment `name`'s `:tiny` variant trained to its end."""
  from segjax.train.loop import train

  config = experiment(name).get_config("tiny")
  config.data.tfds_dir = tfds_dir
  workdir = tmp_path_factory.mktemp(f"tiny_{name}")
  train(config, str(workdir))
  return str(workdir)


@pytest.fixture(scope="session")
def tiny_instance_workdir(experiment, tfds_dir, tmp_path_factory) -> str:
  return trained_workdir(experiment, tfds_dir, tmp_path_factory, "mask_rcnn_r50_fpn_shapes")


@pytest.fixture(scope="session")
def tiny_promptable_workdir(experiment, tfds_dir, tmp_path_factory) -> str:
  return trained_workdir(experiment, tfds_dir, tmp_path_factory, "sam_tiny_shapes")


@pytest.fixture(scope="session")
def tiny_panoptic_workdir(experiment, tfds_dir, tmp_path_factory) -> str:
  return trained_workdir(experiment, tfds_dir, tmp_path_factory, "panoptic_deeplab_shapes")


@pytest.mark.slow
def test_explore_run_executes_and_draws(tiny_run_workdir, kernel, monkeypatch):
  outputs = execute(
    "explore_run.ipynb", tiny_run_workdir, limit=16, kernel=kernel, monkeypatch=monkeypatch
  )
  assert figures(outputs), "the notebook drew no figure"


@pytest.mark.slow
def test_instance_notebook_executes_and_draws(tiny_instance_workdir, kernel, monkeypatch):
  outputs = execute(
    "instance.ipynb", tiny_instance_workdir, limit=12, kernel=kernel, monkeypatch=monkeypatch
  )
  assert figures(outputs) >= 4
  assert "ap50:" in text(outputs) and "checkpoint step 4" in text(outputs)


@pytest.mark.slow
def test_panoptic_notebook_executes_and_draws(tiny_panoptic_workdir, kernel, monkeypatch):
  outputs = execute(
    "panoptic.ipynb", tiny_panoptic_workdir, limit=12, kernel=kernel, monkeypatch=monkeypatch
  )
  assert figures(outputs) >= 4
  assert "pq:" in text(outputs) and "checkpoint step 4" in text(outputs)


@pytest.mark.slow
def test_promptable_notebook_clicks_draws_and_plots_the_click_curve(
  tiny_promptable_workdir, kernel, monkeypatch
):
  outputs = execute(
    "promptable.ipynb",
    tiny_promptable_workdir,
    limit=1,
    kernel=kernel,
    monkeypatch=monkeypatch,
    SEGJAX_MODEL=tiny_promptable_workdir,
  )
  assert figures(outputs) >= 3  # candidates, points and box, click curve
  assert "NoC@85" in text(outputs) and "encoded in" in text(outputs)
  # The last figure is ipympl's canvas, which takes clicks.
  widgets = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
  assert widgets, "the click figure is not an interactive canvas"

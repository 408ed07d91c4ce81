"""The notebooks run top to bottom against the tiny run, in a kernel of this interpreter."""

import pathlib

import nbclient
import nbformat
import pytest

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.slow
def test_explore_run_executes_and_draws(tiny_run_workdir, kernel, monkeypatch):
  path = NOTEBOOKS / "explore_run.ipynb"
  nb = nbformat.read(path, as_version=4)
  code = [cell for cell in nb.cells if cell.cell_type == "code"]
  assert all(not cell.outputs and cell.execution_count is None for cell in code), (
    f"{path.name} is committed with outputs: clear them."
  )
  monkeypatch.setenv("SEGJAX_WORKDIR", tiny_run_workdir)
  monkeypatch.setenv("SEGJAX_LIMIT", "16")
  # Headless and Agg-rendered, like Agg, but it also sends each figure to the notebook as a PNG;
  # set explicitly, since an MPLBACKEND=Agg inherited from the shell would hide every figure.
  monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")

  # Raises CellExecutionError, with the cell and its traceback, if any cell fails.
  client = nbclient.NotebookClient(
    nb, kernel_name=kernel, timeout=120, resources={"metadata": {"path": str(NOTEBOOKS)}}
  )
  client.execute()

  outputs = [output for cell in code for output in cell.outputs]
  figures = [o for o in outputs if "image/png" in o.get("data", {})]
  assert figures, "the notebook drew no figure"


@pytest.fixture(scope="session")
def tiny_instance_workdir(experiment, tfds_dir, tmp_path_factory) -> str:
  """A workdir of the tiny Mask R-CNN experiment trained to its end."""
  from segjax.train.loop import train

  config = experiment("mask_rcnn_r50_fpn_shapes").get_config("tiny")
  config.data.tfds_dir = tfds_dir
  workdir = tmp_path_factory.mktemp("tiny_instance_run")
  train(config, str(workdir))
  return str(workdir)


@pytest.mark.slow
def test_instance_notebook_executes_and_draws(tiny_instance_workdir, kernel, monkeypatch):
  path = NOTEBOOKS / "instance.ipynb"
  nb = nbformat.read(path, as_version=4)
  code = [cell for cell in nb.cells if cell.cell_type == "code"]
  assert all(not cell.outputs and cell.execution_count is None for cell in code)
  monkeypatch.setenv("SEGJAX_WORKDIR", tiny_instance_workdir)
  monkeypatch.setenv("SEGJAX_LIMIT", "12")
  monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
  client = nbclient.NotebookClient(
    nb, kernel_name=kernel, timeout=180, resources={"metadata": {"path": str(NOTEBOOKS)}}
  )
  client.execute()
  outputs = [output for cell in code for output in cell.outputs]
  assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4
  text = "".join(o.get("text", "") for o in outputs)
  assert "ap50:" in text and "checkpoint step 4" in text


@pytest.fixture(scope="session")
def tiny_panoptic_workdir(experiment, tfds_dir, tmp_path_factory) -> str:
  """A workdir of the tiny Panoptic-DeepLab experiment trained to its end."""
  from segjax.train.loop import train

  config = experiment("panoptic_deeplab_shapes").get_config("tiny")
  config.data.tfds_dir = tfds_dir
  workdir = tmp_path_factory.mktemp("tiny_panoptic_run")
  train(config, str(workdir))
  return str(workdir)


@pytest.mark.slow
def test_panoptic_notebook_executes_and_draws(tiny_panoptic_workdir, kernel, monkeypatch):
  path = NOTEBOOKS / "panoptic.ipynb"
  nb = nbformat.read(path, as_version=4)
  code = [cell for cell in nb.cells if cell.cell_type == "code"]
  assert all(not cell.outputs and cell.execution_count is None for cell in code)
  monkeypatch.setenv("SEGJAX_WORKDIR", tiny_panoptic_workdir)
  monkeypatch.setenv("SEGJAX_LIMIT", "12")
  monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
  client = nbclient.NotebookClient(
    nb, kernel_name=kernel, timeout=180, resources={"metadata": {"path": str(NOTEBOOKS)}}
  )
  client.execute()
  outputs = [output for cell in code for output in cell.outputs]
  assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4
  text = "".join(o.get("text", "") for o in outputs)
  assert "pq:" in text and "checkpoint step 4" in text

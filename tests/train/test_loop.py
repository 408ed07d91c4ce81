"""The training loop end to end on the tiny experiment: the workdir contract, resume, devices."""

import functools
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from segjax.data import DATASETS
from segjax.errors import InputError
from segjax.train.logging import read_metrics
from segjax.train.loop import build, load_config, restore_state, train

pytestmark = pytest.mark.slow


def _params(config, workdir, which="latest"):
  dataset = DATASETS[config.data.name](config.data, config.data.train_split)
  step, state = restore_state(build(config, dataset), str(workdir), which)
  return step, jax.device_get(state.params)


def test_tiny_run_writes_the_workdir_contract(tiny_config, tmp_path):
  with jax.transfer_guard("disallow"):
    scores = train(tiny_config, str(tmp_path))
  assert (tmp_path / "config.json").is_file()
  assert load_config(tmp_path).to_dict() == tiny_config.to_dict()
  records = read_metrics(tmp_path)
  train_steps = [r["step"] for r in records if r["split"] == "train"]
  assert train_steps == [2, 4]
  (evaluation,) = [r for r in records if r["split"] == "validation"]
  assert evaluation["step"] == 4
  assert evaluation["miou"] == pytest.approx(scores["miou"])
  assert set(evaluation["per_class_iou"]) == {
    "sky",
    "road",
    "building",
    "pole",
    "car",
    "person",
    "sign",
  }
  assert 0 <= scores["miou"] <= 1 and 0 <= scores["boundary_iou"] <= 1
  assert [p.name for p in (tmp_path / "checkpoints/latest").iterdir()] == ["4"]
  assert [p.name for p in (tmp_path / "checkpoints/best").iterdir()] == ["4"]
  assert list((tmp_path / "events").iterdir())
  overlays = sorted((tmp_path / "predictions").glob("*.png"))
  assert len(overlays) == tiny_config.eval.num_overlays


def test_resumed_run_equals_uninterrupted_run(tiny_config, tmp_path):
  tiny_config.train.steps = 8
  tiny_config.train.eval_every = 0
  train(tiny_config, str(tmp_path / "straight"))
  train(tiny_config, str(tmp_path / "resumed"), stop_after=4)  # a preemption at step 4
  assert _params(tiny_config, tmp_path / "resumed")[0] == 4
  train(tiny_config, str(tmp_path / "resumed"))

  straight_step, straight = _params(tiny_config, tmp_path / "straight")
  resumed_step, resumed = _params(tiny_config, tmp_path / "resumed")
  assert straight_step == resumed_step == 8
  jax.tree.map(np.testing.assert_array_equal, straight, resumed)
  losses = {
    name: {r["step"]: r["loss"] for r in read_metrics(tmp_path / name) if r["split"] == "train"}
    for name in ("straight", "resumed")
  }
  assert losses["straight"] == losses["resumed"]
  assert set(losses["straight"]) == {2, 4, 6, 8}


def test_nothing_to_do_after_the_last_step(tiny_config, tmp_path):
  train(tiny_config, str(tmp_path))
  before = (tmp_path / "metrics.jsonl").read_text()
  train(tiny_config, str(tmp_path))
  assert (tmp_path / "metrics.jsonl").read_text() == before


STEP_SCRIPT = textwrap.dedent(
  """
  import json, sys
  import jax, numpy as np
  from segjax import runtime
  runtime.configure()
  from segjax.config import base_config
  from segjax.data import Dataset
  from segjax.train import sharding
  from segjax.train.loop import build, init_state, make_train_step

  class Source:
    def __len__(self): return 8
    def __getitem__(self, i):
      rng = np.random.default_rng(i)
      return {"image": rng.integers(0, 255, (32, 32, 3), dtype=np.uint8),
              "semantic": rng.choice(np.array([0, 1, 2, 255], np.uint8), (32, 32))}

  c = base_config()
  c.model.name, c.data.image_size = "unet_tiny", (32, 32)
  c.data.batch_size = c.eval.batch_size = 8
  c.mesh.model = int(sys.argv[1])
  exp = build(c, Dataset(Source(), class_names=("a", "b", "c")))
  batch = {k: np.stack([Source()[i][k] for i in range(8)]) for k in ("image", "semantic")}
  state = init_state(exp, jax.random.key(0))
  step = make_train_step(exp)
  for _ in range(2):
    state, metrics = step(state, sharding.to_global(batch, exp.mesh), jax.random.key(1))
  kernel = state.params["head"]["kernel"]
  spec = [str(axis) for axis in kernel.sharding.spec]
  print(json.dumps({"devices": jax.device_count(), "loss": float(metrics["loss"]),
                    "kernel": np.asarray(jax.device_get(kernel)).ravel().tolist(),
                    "spec": spec}))
  """
)


@functools.cache  # the one-device reference is run once for all meshes
def _run_step(devices: int, model: int = 1) -> dict:
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  out = subprocess.run(
    [sys.executable, "-c", STEP_SCRIPT, str(model)],
    env=env,
    capture_output=True,
    text=True,
    check=True,
  )
  return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("devices, model", [(2, 1), (4, 1), (4, 2), (4, 4)])
def test_data_and_model_parallel_steps_match_one_device(devices, model):
  one, many = _run_step(1), _run_step(devices, model)
  assert (one["devices"], many["devices"]) == (1, devices)
  # The head's kernel (1x1x4xC) is split over `model` along its last axis that divides evenly.
  assert many["spec"] == ([] if model == 1 else ["None", "None", "model", "None"])
  # Batch norm sees the global batch on every mesh; only the reduction order differs.
  assert many["loss"] == pytest.approx(one["loss"], rel=1e-5)
  np.testing.assert_allclose(many["kernel"], one["kernel"], rtol=1e-4, atol=1e-6)


def test_cli_train_eval_predict(tiny_config, tmp_path):
  repo = pathlib.Path(__file__).resolve().parents[2]
  workdir, images, out = tmp_path / "run", tmp_path / "images", tmp_path / "out"
  cli = [sys.executable, "-m", "segjax.main"]
  common = [
    f"--config={repo}/experiments/unet_shapes.py:tiny",
    f"--config.data.tfds_dir={tiny_config.data.tfds_dir}",
  ]
  subprocess.run([*cli, "train", *common, f"--workdir={workdir}"], check=True, cwd=tmp_path)

  result = subprocess.run(
    [*cli, "eval", f"--workdir={workdir}", "--checkpoint=latest"],
    check=True,
    capture_output=True,
    text=True,
  )
  assert "mean" in result.stdout and (workdir / "eval/validation_step4.json").is_file()

  from PIL import Image

  images.mkdir()
  rng = np.random.default_rng(0)
  for name, size in (("a.png", (37, 53)), ("b.jpg", (64, 48))):
    Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(images / name)
  subprocess.run(
    [*cli, "predict", f"--workdir={workdir}", f"--input={images}", f"--output={out}"], check=True
  )
  for stem, size in (("a", (37, 53)), ("b", (64, 48))):
    labels = np.asarray(Image.open(out / f"{stem}_labels.png"))
    assert labels.shape == size and labels.max() < 7
    assert np.asarray(Image.open(out / f"{stem}_overlay.png")).shape == (*size, 3)


@pytest.mark.parametrize(
  ("args", "message"),
  [
    (["--config.train.stpes=3"], 'Did you mean "steps"'),
    (["--config.train.steps=abc"], "config.train.steps"),
    (["--config.model.name=unte"], "config.model.name='unte' is not one of"),
    (["--config.data.batch_size=-1"], "config.data.batch_size=-1 is invalid"),
  ],
)
def test_cli_rejects_bad_overrides_by_name(args, message, tmp_path):
  repo = pathlib.Path(__file__).resolve().parents[2]
  result = subprocess.run(
    [
      sys.executable,
      "-m",
      "segjax.main",
      "train",
      f"--config={repo}/experiments/unet_shapes.py:tiny",
      f"--workdir={tmp_path}",
      *args,
    ],
    capture_output=True,
    text=True,
  )
  assert result.returncode != 0
  assert message in result.stderr
  assert "Traceback" not in result.stderr


def test_checkpoints_of_another_model_are_refused_and_kept(tiny_config, tmp_path):
  train(tiny_config, str(tmp_path))
  tiny_config.model.name, tiny_config.model.kwargs = "unet", {"widths": (4, 8)}
  tiny_config.train.resume = "force"  # past the config check, to the checkpoint's own
  with pytest.raises(InputError, match=r"belong to a different model.*new --workdir"):
    train(tiny_config, str(tmp_path))
  assert [p.name for p in (tmp_path / "checkpoints/latest").iterdir()] == ["4"]
  assert (tmp_path / "config.1.json").is_file()  # the first run's config is kept


def test_unreadable_checkpoint_is_moved_aside_and_an_older_one_used(tiny_config, tmp_path):
  tiny_config.train.checkpoint_every = 2
  tiny_config.train.eval_every = 0
  train(tiny_config, str(tmp_path), stop_after=4)
  latest = tmp_path / "checkpoints/latest"
  assert sorted(p.name for p in latest.iterdir()) == ["2", "4"]
  for f in (latest / "4/state").rglob("*"):
    if f.is_file():
      f.write_bytes(b"garbage")
  train(tiny_config, str(tmp_path), stop_after=4)  # resumes from step 2, redoes 3 and 4
  names = sorted(p.name for p in latest.iterdir())
  assert "2" in names and "4" in names
  assert any(n.startswith("4.unreadable-") for n in names)


def test_boundary_loss_trains_with_maps_from_the_input_pipeline(tiny_config, tmp_path):
  import ml_collections

  tiny_config.loss.terms = ml_collections.ConfigDict(
    {"dice": {"weight": 1.0}, "boundary": {"weight": 0.1, "ramp_steps": (0, 4)}}
  )
  tiny_config.loss.class_weights = "inverse"  # dice takes none: accepted and unused
  tiny_config.train.eval_every = 0
  train(tiny_config, str(tmp_path))
  (last,) = [r for r in read_metrics(tmp_path) if r["split"] == "train" and r["step"] == 4]
  assert np.isfinite(last["loss_boundary"]) and last["loss_boundary"] != 0.0


def test_an_unwritable_workdir_stops_the_run_before_the_data_is_opened(tiny_config, tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("not a folder")
  tiny_config.data.name, tiny_config.data.root = "folder", str(tmp_path / "no_data_here")
  with pytest.raises(InputError, match=r"workdir .*a_file/run cannot be written .*writable"):
    train(tiny_config, str(blocker / "run"))

"""Faults of long runs: non-finite losses, pre-emption, broken checkpoints, a changed config,
and runs that must repeat bit for bit."""

import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from segjax.data import DATASETS
from segjax.data.loader import train_stream
from segjax.errors import InputError, NonFiniteError
from segjax.train.logging import read_metrics
from segjax.train.loop import build, restore_state, train

pytestmark = pytest.mark.slow

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def config(tiny_config):
  """The tiny run, 6 steps, logged every step, checkpointed every 2, no evaluation."""
  c = tiny_config
  c.train.steps, c.train.log_every, c.train.checkpoint_every, c.train.eval_every = 6, 1, 2, 0
  return c


def _train_records(workdir) -> dict[int, dict]:
  return {r["step"]: r for r in read_metrics(workdir) if r["split"] == "train"}


def _params(config, workdir):
  dataset = DATASETS[config.data.name](config.data, config.data.train_split)
  return jax.device_get(restore_state(build(config, dataset), str(workdir), "latest")[1].params)


def test_nonfinite_stop_names_the_step_the_loss_terms_and_the_examples(config, tmp_path):
  config.train.inject_nonfinite_at = (3,)
  with pytest.raises(NonFiniteError) as error:
    train(config, str(tmp_path))
  message = str(error.value)
  assert "step 3" in message and "loss_ce=nan" in message and "loss_dice=" in message
  # The batch's examples, by index in the train split.
  assert re.search(r"examples of shapes train: #\d+, #\d+, #\d+, #\d+\.", message), message
  assert "on_nonfinite" in message
  # The checkpoint before the fault is there to go back to; nothing after it was saved.
  assert sorted(p.name for p in (tmp_path / "checkpoints/latest").iterdir()) == ["2"]


def test_nonfinite_skip_leaves_the_update_out_and_counts_it(config, tmp_path):
  config.train.on_nonfinite = "skip"
  config.train.inject_nonfinite_at = (3,)
  train(config, str(tmp_path))
  records = _train_records(tmp_path)
  assert [records[s]["skipped_steps"] for s in range(1, 7)] == [0, 0, 1, 0, 0, 0]
  assert all(np.isfinite(records[s]["loss"]) for s in (4, 5, 6))
  params = _params(config, tmp_path)
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(params))


def test_nonfinite_rollback_restores_the_last_checkpoint_and_goes_on(config, tmp_path, capsys):
  config.train.on_nonfinite = "rollback"
  config.train.inject_nonfinite_at = (3,)
  train(config, str(tmp_path))
  records = _train_records(tmp_path)
  assert records[3]["rolled_back_to"] == 2 and records[3]["skipped_steps"] == 1
  assert "rolled back to the checkpoint of step 2" in capsys.readouterr().out
  assert sorted(records) == [1, 2, 3, 4, 5, 6]
  assert all(np.isfinite(records[s]["loss"]) for s in (4, 5, 6))


def test_a_changed_config_is_refused_with_the_keys_unless_forced(config, tmp_path):
  config.train.stop_at = 2
  train(config, str(tmp_path))
  config.train.stop_at = 0  # how far to go is not part of the run's identity
  config.optimizer.learning_rate = 0.5
  config.data.hflip = False
  with pytest.raises(InputError) as error:
    train(config, str(tmp_path))
  message = str(error.value)
  assert (
    "optimizer.learning_rate: 0.001 -> 0.5" in message and "data.hflip: True -> False" in message
  )
  assert "train.resume=force" in message and "stop_at" not in message
  assert sorted(p.name for p in (tmp_path / "checkpoints/latest").iterdir()) == ["2"]
  config.train.resume = "force"
  train(config, str(tmp_path))
  assert max(_train_records(tmp_path)) == 6
  assert (tmp_path / "config.1.json").is_file()  # the first run's config is kept


@pytest.mark.parametrize("damage", ["truncate", "remove_state"])
def test_a_damaged_latest_checkpoint_falls_back_to_the_one_before(config, tmp_path, damage, capsys):
  config.train.stop_at = 4
  train(config, str(tmp_path))
  latest = tmp_path / "checkpoints/latest"
  state = latest / "4" / "state"
  if damage == "truncate":  # a save cut short: every file of the newest state half written
    for f in state.rglob("*"):
      if f.is_file():
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
  else:  # the state directory never made it to disk
    for f in sorted(state.rglob("*"), reverse=True):
      f.unlink() if f.is_file() else f.rmdir()
    state.rmdir()
  config.train.stop_at = 0
  train(config, str(tmp_path))
  out = capsys.readouterr().out
  assert "Checkpoint" in out and "/4 could not be read" in out and "Resumed from step 2" in out
  names = sorted(p.name for p in latest.iterdir())
  assert "6" in names and any(n.startswith("4.unreadable-") for n in names)


def test_a_failed_save_keeps_the_earlier_checkpoints_and_says_so(config, tmp_path, monkeypatch):
  import errno

  import orbax.checkpoint as ocp

  config.train.stop_at = 2
  train(config, str(tmp_path))
  save = ocp.CheckpointManager.save

  def full_disk(manager, step, *args, **kwargs):
    if step == 4:
      raise OSError(errno.ENOSPC, "No space left on device")
    return save(manager, step, *args, **kwargs)

  monkeypatch.setattr(ocp.CheckpointManager, "save", full_disk)
  config.train.stop_at = 0
  with pytest.raises(InputError, match=r"step 4 .*No space left.*checkpoints \[2\] are intact"):
    train(config, str(tmp_path))
  monkeypatch.undo()
  assert sorted(p.name for p in (tmp_path / "checkpoints/latest").iterdir()) == ["2"]
  train(config, str(tmp_path))  # the same command resumes from step 2 once there is space
  assert max(_train_records(tmp_path)) == 6


def _segjax_train(workdir, tfds_dir, *flags):
  return [
    sys.executable, "-m", "segjax.main", "train",
    f"--config={REPO}/experiments/unet_shapes.py:tiny", f"--config.data.tfds_dir={tfds_dir}",
    "--config.train.steps=100000", "--config.train.log_every=5",
    "--config.train.checkpoint_every=100000", "--config.train.eval_every=0",
    f"--workdir={workdir}", *flags,
  ]  # fmt: skip


@pytest.mark.parametrize("sig", [signal.SIGTERM])  # SIGINT takes the same path (StopSignal)
def test_a_signal_saves_a_checkpoint_and_the_same_command_resumes(tfds_dir, tmp_path, sig):
  process = subprocess.Popen(
    _segjax_train(tmp_path, tfds_dir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
  )
  metrics = tmp_path / "metrics.jsonl"
  deadline = time.time() + 300
  while not (metrics.exists() and metrics.read_text().strip()):  # training has started
    assert process.poll() is None and time.time() < deadline, process.stdout.read()
    time.sleep(0.2)
  process.send_signal(sig)
  output = process.communicate(timeout=120)[0]
  assert process.returncode == 128 + sig, output
  assert f"{sig.name} received" in output and "same command" in output
  (saved,) = [int(p.name) for p in (tmp_path / "checkpoints/latest").iterdir()]
  assert saved >= 5 and max(r["step"] for r in read_metrics(tmp_path)) == saved

  resumed = subprocess.run(
    _segjax_train(tmp_path, tfds_dir, f"--config.train.stop_at={saved + 2}"),
    capture_output=True,
    text=True,
    env={**os.environ},
  )
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert f"Resumed from step {saved}" in resumed.stdout
  assert sorted(int(p.name) for p in (tmp_path / "checkpoints/latest").iterdir())[-1] == saved + 2


def test_two_runs_of_one_config_are_bit_identical(config, tmp_path):
  config.train.eval_every = 6
  for name in ("a", "b"):
    train(config, str(tmp_path / name))
  first, second = (
    [{k: v for k, v in r.items() if k != "steps_per_sec"} for r in read_metrics(tmp_path / name)]
    for name in ("a", "b")
  )
  assert first == second and len(first) == 7
  jax.tree.map(
    np.testing.assert_array_equal, _params(config, tmp_path / "a"), _params(config, tmp_path / "b")
  )


def test_the_data_order_does_not_depend_on_the_loader_threads(config):
  dataset = DATASETS[config.data.name](config.data, config.data.train_split)
  streams = []
  for threads in (1, 4):
    config.data.num_threads = threads
    stream = train_stream(dataset, config.data, ("image", "semantic"), seed=3)
    streams.append([next(stream) for _ in range(6)])
  for one, four in zip(*streams, strict=True):
    assert one.keys() == four.keys()
    for key in one:
      np.testing.assert_array_equal(one[key], four[key])


def test_the_step_guard_costs_no_host_sync(config, tmp_path):
  """With every guard on, the loop runs under a transfer guard that forbids implicit transfers."""
  config.train.on_nonfinite = "skip"
  with jax.transfer_guard("disallow"):
    train(config, str(tmp_path))
  assert json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])["step"] == 1

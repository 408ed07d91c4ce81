"""Two `segjax train` processes on localhost (gloo CPU collectives, two fake devices each) train
exactly as one process with four devices: the same losses, logs written once, and a checkpoint
that both save and both resume from."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

REPO = pathlib.Path(__file__).resolve().parents[2]


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _command(tfds_dir: str, workdir: pathlib.Path, *flags: str) -> list[str]:
  return [
    sys.executable, "-m", "segjax.main", "train",
    f"--config={REPO}/experiments/unet_shapes.py:tiny", f"--config.data.tfds_dir={tfds_dir}",
    "--config.train.steps=4", "--config.train.log_every=1", "--config.train.eval_every=4",
    "--config.train.checkpoint_every=2", f"--workdir={workdir}", *flags,
  ]  # fmt: skip


def _env(devices: int, **extra: str) -> dict[str, str]:
  env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "SLURM_"))}
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  return {**env, **extra}


def _two_processes(command: list[str]) -> list[str]:
  """Runs `command` as processes 0 and 1 of a two-process job; returns their outputs."""
  port = _free_port()
  processes = [
    subprocess.Popen(
      command,
      env=_env(
        2,
        JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
        JAX_NUM_PROCESSES="2",
        JAX_PROCESS_ID=str(i),
      ),
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT,
      text=True,
    )
    for i in range(2)
  ]
  outputs = [p.communicate(timeout=600)[0] for p in processes]
  for i, (process, output) in enumerate(zip(processes, outputs, strict=True)):
    assert process.returncode == 0, f"process {i} failed:\n{output[-3000:]}"
  return outputs


def _losses(workdir: pathlib.Path) -> dict[int, float]:
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  train = [r for r in records if r["split"] == "train"]
  assert len({r["step"] for r in train}) == len(train), "a step was logged twice"
  return {r["step"]: r["loss"] for r in train}


def test_two_hosts_train_resume_and_log_like_one_host_with_four_devices(tfds_dir, tmp_path):
  single = tmp_path / "single"
  subprocess.run(_command(tfds_dir, single), env=_env(4), check=True, capture_output=True)

  multi = tmp_path / "multi"
  # Stopped at step 2 (a checkpoint from both hosts), then the same job resumed to step 4.
  first = _two_processes(_command(tfds_dir, multi, "--config.train.stop_at=2"))
  assert all("2 processes, 4 devices" in output for output in first)
  assert sorted(p.name for p in (multi / "checkpoints/latest").iterdir()) == ["2"]
  second = _two_processes(_command(tfds_dir, multi))
  assert all("Resumed from step 2" in output for output in second)

  expected, got = _losses(single), _losses(multi)
  assert sorted(got) == sorted(expected) == [1, 2, 3, 4]
  for step in expected:
    assert got[step] == pytest.approx(expected[step], rel=1e-5), step
  # Only process 0 writes: one config, one metrics file without repeated steps, one eval record.
  records = [json.loads(line) for line in (multi / "metrics.jsonl").read_text().splitlines()]
  assert sum(r["split"] != "train" for r in records) == 1

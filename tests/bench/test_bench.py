"""`segjax bench`: every field of every program, XLA's FLOP counts against closed forms, peaks."""

import json
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from segjax.bench import hardware, measure
from segjax.bench.run import Record, format_records

FIELDS = (
  "what", "model", "batch_size", "image_size", "images_per_s", "steps_per_s", "compile_s",
  "peak_memory_bytes", "flops_per_step", "mfu", "device",
)  # fmt: skip


def test_bench_cli_reports_every_field_of_every_program(cli, tfds_dir):
  result = cli(
    "bench",
    "--config=experiments/unet_shapes.py:tiny",
    f"--config.data.tfds_dir={tfds_dir}",
    "--what=train,eval,predict,data",
    "--steps=2",
    "--repeats=2",
    "--json",
  )
  records = [json.loads(line) for line in result.stdout.splitlines()]
  assert [r["what"] for r in records] == ["train", "eval", "predict", "data"]
  for record in records:
    assert set(FIELDS) <= set(record), record
    assert record["model"] == "unet_tiny" and record["device"].startswith("cpu")
    assert record["image_size"] == [32, 32]
    assert record["images_per_s"] == pytest.approx(record["steps_per_s"] * record["batch_size"])
    assert record["steps_per_s_min"] <= record["steps_per_s"] <= record["steps_per_s_max"]
  train, evaluation, predict, data = records
  assert (train["batch_size"], evaluation["batch_size"], predict["batch_size"]) == (4, 8, 1)
  for program in (train, evaluation, predict):
    assert program["compile_s"] > 0 and program["peak_memory_bytes"] > 0
    assert program["peak_memory_source"] == "compiled"  # CPU keeps no allocator statistics
    assert 0 < program["mfu"] < 1
    assert program["mfu"] == pytest.approx(
      program["flops_per_step"] * program["steps_per_s"] / program["peak_flops"]
    )
  # A train step (forward, backward, update) costs about three forward passes of the same batch.
  forward_per_image = predict["flops_per_step"]
  assert 2.5 < train["flops_per_step"] / (4 * forward_per_image) < 4
  assert data["flops_per_step"] is None and data["compile_s"] is None
  assert not any(r["compilation_cache"] for r in records)  # cold compiles unless asked
  assert train["data_images_per_s"] > 0 and isinstance(train["input_bound"], bool)


def test_bench_cli_table_and_bad_what(cli, tfds_dir):
  import subprocess
  import sys

  table = cli(
    "bench", "--config=experiments/unet_shapes.py:tiny", f"--config.data.tfds_dir={tfds_dir}",
    "--steps=1", "--repeats=1",
  ).stdout  # fmt: skip
  assert table.splitlines()[0].split()[:4] == ["what", "model", "batch", "size"]
  assert table.splitlines()[1].split()[:2] == ["train", "unet_tiny"]
  bad = subprocess.run(
    [sys.executable, "-m", "segjax.main", "bench", "--config=experiments/unet_shapes.py:tiny",
     "--what=train,speed"],
    capture_output=True, text=True,
  )  # fmt: skip
  assert bad.returncode == 2
  assert "speed" in bad.stderr and "train,eval,predict,data" in bad.stderr


@pytest.mark.parametrize("padding", ["VALID", "SAME"])
def test_conv_flops_match_the_closed_form(padding):
  b, h, w, cin, cout, k = 2, 12, 10, 5, 7, 3
  x = jnp.ones((b, h, w, cin))
  kernel = jnp.ones((k, k, cin, cout))
  conv = jax.jit(
    lambda x, kernel: jax.lax.conv_general_dilated(
      x, kernel, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
  )
  flops = measure.program_flops(conv.lower(x, kernel).compile())
  if padding == "VALID":  # every output sums k*k*cin products: a multiply and an add each
    assert flops == 2 * b * (h - k + 1) * (w - k + 1) * k * k * cin * cout
  else:  # zero padding: XLA counts only the products with real pixels (taps inside the image)
    taps = sum(
      (min(h, i + 2) - max(0, i - 1)) * (min(w, j + 2) - max(0, j - 1))
      for i in range(h)
      for j in range(w)
    )
    assert flops == 2 * b * taps * cin * cout


def test_matmul_flops_and_compiled_memory():
  a, b = jnp.ones((64, 32)), jnp.ones((32, 48))
  compiled = jax.jit(jnp.matmul).lower(a, b).compile()
  assert measure.program_flops(compiled) == 2 * 64 * 32 * 48
  # Arguments and output alone: 4 bytes each.
  assert measure.program_memory(compiled) >= 4 * (64 * 32 + 32 * 48 + 64 * 48)


def test_time_steps_calls_warmup_then_repeats_of_steps():
  calls = []
  timing = measure.time_steps(lambda: calls.append(1) or jnp.ones(()), steps=3, repeats=4)
  assert len(calls) == 1 + 3 * 4
  assert len(timing.seconds_per_step) == 4
  low, high = timing.steps_per_s_range
  assert low <= timing.steps_per_s <= high


def _device(kind: str, platform: str = "gpu"):
  return types.SimpleNamespace(device_kind=kind, platform=platform)


@pytest.mark.parametrize(
  "kind, bf16, f32",
  [
    ("NVIDIA H100 80GB HBM3", 989e12, 495e12),
    ("NVIDIA H100 PCIe", 756e12, 378e12),
    ("NVIDIA H200", 989e12, 495e12),
    ("NVIDIA A100-SXM4-40GB", 312e12, 156e12),
    ("TPU v4", 275e12, 275e12),
    ("TPU v5 lite", 197e12, 197e12),
  ],
)
def test_data_sheet_peaks(kind, bf16, f32):
  assert hardware.peak_flops("bfloat16", _device(kind)) == (bf16, "data sheet")
  assert hardware.peak_flops("float32", _device(kind)) == (f32, "data sheet")


def test_unknown_accelerator_has_no_peak_and_says_so():
  peak, reason = hardware.peak_flops("bfloat16", _device("Quantum Sheep 9000"))
  assert peak is None and "Quantum Sheep 9000" in reason


def test_cpu_peak_is_a_measured_matmul_rate():
  peak, source = hardware.peak_flops("float32", jax.devices("cpu")[0])
  assert source == "measured matmul"
  assert 1e8 < peak < 1e14  # between a slow core and a large server, in FLOP/s
  assert hardware.describe(jax.devices("cpu")[0]).startswith("cpu (")


def test_table_shows_missing_values_as_dashes():
  record = Record(
    what="data", model="unet", batch_size=8, image_size=(64, 64), dtype="float32",
    device="cpu (2 cores)", num_devices=1, images_per_s=80.0, steps_per_s=10.0,
    steps_per_s_min=9.0, steps_per_s_max=11.0, compile_s=None, compilation_cache=False,
    peak_memory_bytes=None, peak_memory_source=None, peak_rss_bytes=2**30, flops_per_step=None,
    mfu=None,
    peak_flops=np.float64(1e11), peak_flops_source="measured matmul", steps=3, repeats=2,
  )  # fmt: skip
  row = format_records([record]).splitlines()[1].split()
  assert row[:5] == ["data", "unet", "8", "64x64", "80.0"]
  assert row[-4:] == ["-", "-", "-", "-"]

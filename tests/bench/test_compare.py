"""benchmarks/compare.py and torch_reference.py: the flags derived from a config, the PyTorch side
run for real at a tiny size, and BENCHMARKS.md sections that replace only themselves."""

import json
import pathlib
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch", reason="torch, the benchmark reference, is not installed")
import compare  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_torch_flags_follow_the_experiment_config():
  unet, deeplab = (case.config() for case in compare.CPU_CASES)
  flags = compare.torch_args(unet, num_classes=7)
  assert "--loss=dice_ce" in flags and "--optimizer=adamw" in flags
  size = flags.index("--image-size")
  assert "--batch-size=8" in flags and flags[size + 1 : size + 3] == ["128", "128"]
  assert f"--clip={unet.optimizer.grad_clip_norm}" in flags
  assert tuple(unet.model.kwargs.widths) == (64, 128, 256)
  flags = compare.torch_args(deeplab, num_classes=7)
  assert "--loss=ce" in flags and "--optimizer=sgd" in flags and "--clip=0.0" in flags


def test_an_override_of_a_missing_key_is_refused():
  from segjax.errors import InputError

  case = compare.Case("x", "x", "experiments/unet_shapes.py", {"data.batch_sise": 8}, None)
  with pytest.raises(InputError, match=r"batch_sise.*data\.batch_size"):
    case.config()


def test_loss_without_a_pytorch_twin_is_refused():
  config = compare.CPU_CASES[0].config()
  config.loss.terms = {"focal": {"weight": 1.0}}
  with pytest.raises(ValueError, match="focal"):
    compare.torch_args(config, num_classes=7)


def test_torch_reference_trains_and_reports(tmp_path):
  result = subprocess.run(
    [sys.executable, str(REPO / "benchmarks/torch_reference.py"), "--model=unet",
     "--batch-size=2", "--image-size", "32", "32", "--steps=1", "--repeats=2", "--json"],
    capture_output=True, text=True, check=True, cwd=tmp_path,
  )  # fmt: skip
  record = json.loads(result.stdout.splitlines()[-1])
  assert record["framework"] == "pytorch-eager" and record["parameters"] == 7_701_895
  assert record["images_per_s"] == pytest.approx(2 * record["steps_per_s"])
  assert record["peak_rss_bytes"] > 0


def test_paced_processes_take_turns_and_report(tfds_dir):
  segjax = [
    sys.executable, "-m", "segjax.main", "bench", "--config=experiments/unet_shapes.py:tiny",
    f"--config.data.tfds_dir={tfds_dir}", "--steps=1", "--repeats=2", "--json",
  ]  # fmt: skip
  reference = [
    sys.executable, str(REPO / "benchmarks/torch_reference.py"), "--model=unet",
    "--batch-size=2", "--image-size", "32", "32", "--steps=1", "--repeats=2", "--json",
  ]  # fmt: skip
  records = compare.interleaved({"segjax": segjax, "pytorch-eager": reference}, repeats=2)
  assert records["segjax"]["what"] == "train" and records["segjax"]["repeats"] == 2
  assert records["pytorch-eager"]["framework"] == "pytorch-eager"


def test_sections_replace_only_themselves(tmp_path):
  path = tmp_path / "BENCHMARKS.md"
  path.write_text("# Benchmarks\n\nintro\n")
  compare.write_section(path, "cpu", "cpu numbers 1")
  compare.write_section(path, "accelerator", "gpu numbers")
  compare.write_section(path, "cpu", "cpu numbers 2")
  text = path.read_text()
  assert text.startswith("# Benchmarks\n\nintro\n")
  assert "cpu numbers 2" in text and "cpu numbers 1" not in text and "gpu numbers" in text
  assert text.index("cpu numbers 2") < text.index("gpu numbers")


def test_table_ratios():
  segjax = {
    "steps_per_s": 2.0, "steps_per_s_min": 1.9, "steps_per_s_max": 2.1, "images_per_s": 16.0,
    "compile_s": 3.0, "peak_memory_bytes": 10, "peak_memory_source": "compiled",
    "peak_rss_bytes": 3 * 2**20, "flops_per_step": 4e9, "mfu": 0.5, "peak_flops": 16e9,
    "peak_flops_source": "measured matmul", "data_images_per_s": 100.0, "input_bound": False,
  }  # fmt: skip
  torch_record = {
    "steps_per_s": 1.0, "steps_per_s_min": 1.0, "steps_per_s_max": 1.0, "images_per_s": 8.0,
    "first_step_s": 1.0, "peak_rss_bytes": 4 * 2**20,
  }  # fmt: skip
  rows = compare.table(compare.CPU_CASES[0], {"segjax": segjax, "pytorch-eager": torch_record})
  eager = next(row for row in rows if row.startswith("| pytorch-eager"))
  cells = [cell.strip() for cell in eager.strip("|").split("|")]
  assert cells[3] == "1000"  # ms per step
  assert cells[-2:] == ["0.50", "0.75"]  # segjax takes half the time and 3/4 of the memory

"""Train-step and input-pipeline throughput of an experiment, measured apart.

  python benchmarks/train_step.py --config experiments/unet_shapes.py [--steps 20]

Prints compile time, steps/s of the compiled step on a fixed batch (compute alone), and batches/s
of the input pipeline (host alone), so a slow run can be blamed on the right one.
"""

import argparse
import time

from segjax import runtime

runtime.configure()

import jax  # noqa: E402
from ml_collections import config_flags  # noqa: E402,F401

from segjax.data import DATASETS  # noqa: E402
from segjax.data.loader import train_stream  # noqa: E402
from segjax.train import sharding  # noqa: E402
from segjax.train.loop import build, init_state, make_train_step  # noqa: E402


def load(path_and_arg: str):
  import importlib.util

  path, _, arg = path_and_arg.partition(":")
  spec = importlib.util.spec_from_file_location("experiment", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", required=True)
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--set", nargs="*", default=[], help="overrides key=python-literal")
  args = parser.parse_args()
  config = load(args.config)
  for item in args.set:
    key, value = item.split("=", 1)
    import ast

    config.update_from_flattened_dict({key: ast.literal_eval(value)})
  dataset = DATASETS[config.data.name](config.data, config.data.train_split)
  exp = build(config, dataset)
  stream = train_stream(dataset, config.data, exp.task.fields, seed=0, prepare=exp.task.prepare)
  state = init_state(exp, jax.random.key(0))
  step = make_train_step(exp)
  batch = sharding.to_global(next(stream), exp.mesh)
  key = jax.random.key(1)
  t = time.perf_counter()
  state, metrics = step(state, batch, key)
  jax.block_until_ready(metrics)
  print(f"compile + first step: {time.perf_counter() - t:.1f} s")
  t = time.perf_counter()
  for _ in range(args.steps):
    state, metrics = step(state, batch, key)
  jax.block_until_ready(metrics)
  compute = args.steps / (time.perf_counter() - t)
  t = time.perf_counter()
  for _ in range(args.steps):
    next(stream)
  host = args.steps / (time.perf_counter() - t)
  print(
    f"compute: {compute:.2f} steps/s | input pipeline: {host:.2f} batches/s "
    f"(batch {config.data.batch_size}, {tuple(config.data.image_size)}, {jax.device_count()} "
    f"{jax.devices()[0].platform} devices)"
  )


if __name__ == "__main__":
  main()

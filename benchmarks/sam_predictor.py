"""Latency of `SamPredictor`: encoding an image once, then decoding prompts.

  python benchmarks/sam_predictor.py [--size vit_b] [--checkpoint sam_vit_b_01ec64.pth] [--repeat 5]
      [--json]

Without a checkpoint the weights are random (latency does not depend on their values), so the
published sizes can be timed without downloading them. Prints the first `set_image` (compilation
included), then the median of `--repeat` runs of `set_image` and of `predict` for one point, for
five points with the previous mask, and for a box; `--json` prints them as one JSON object.
"""

import argparse
import json
import statistics
import time

from segjax import runtime

runtime.configure()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from segjax.models.numpy_init import numpy_variables  # noqa: E402
from segjax.models.sam import Sam, SamConfig  # noqa: E402
from segjax.promptable import SamPredictor  # noqa: E402


def random_variables(config: SamConfig):
  model, side = Sam(config), config.image_size
  return numpy_variables(lambda: model.init(jax.random.key(0), jnp.zeros((1, side, side, 3))))


def median_seconds(fn, repeat: int) -> float:
  times = []
  for _ in range(repeat):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--size", default="vit_b", choices=("vit_b", "vit_l", "vit_h"))
  parser.add_argument("--checkpoint", default="", help="an official checkpoint instead")
  parser.add_argument("--repeat", type=int, default=5)
  parser.add_argument("--json", action="store_true")
  args = parser.parse_args()
  if args.checkpoint:
    predictor = SamPredictor.from_checkpoint(args.checkpoint)
  else:
    config = getattr(SamConfig, args.size)()
    predictor = SamPredictor(config, random_variables(config))
  image = np.random.default_rng(0).integers(0, 255, (768, 1024, 3), dtype=np.uint8)

  start = time.perf_counter()
  predictor.set_image(image)
  jax.block_until_ready(predictor.get_image_embedding())
  first = time.perf_counter() - start
  encode = median_seconds(
    lambda: (predictor.set_image(image), predictor.get_image_embedding())[1], args.repeat
  )

  points = np.array([[500, 400], [300, 200], [700, 500], [520, 380], [100, 600]], np.float32)
  labels = np.array([1, 0, 1, 1, 0])
  _, _, logits = predictor.predict(points[:1], labels[:1])
  prompts = {
    "1 point, 3 masks": lambda: predictor.predict(points[:1], labels[:1]),
    "5 points + mask": lambda: predictor.predict(
      points, labels, mask_input=logits[:1], multimask_output=False
    ),
    "box": lambda: predictor.predict(box=np.array([200, 150, 800, 600]), multimask_output=False),
  }
  predict_ms = {}
  for name, fn in prompts.items():
    fn()  # compiles
    predict_ms[name] = median_seconds(fn, args.repeat) * 1e3

  record = {
    "what": "sam_predictor",
    "model": args.checkpoint or args.size,
    "device": jax.devices()[0].device_kind,
    "image_size": [768, 1024],
    "first_set_image_s": first,
    "set_image_ms": encode * 1e3,
    "predict_ms": predict_ms,
  }
  if args.json:
    print(json.dumps(record))
    return
  print(f"{jax.devices()[0].platform}: {record['model']}, a 1024x768 image")
  print(f"  first set_image (compiles)   {first:8.2f} s")
  print(f"  set_image                    {encode * 1e3:8.1f} ms")
  for name, ms in predict_ms.items():
    print(f"  predict, {name:<19} {ms:8.1f} ms")


if __name__ == "__main__":
  main()

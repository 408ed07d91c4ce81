"""The `segjax` command: train | eval | predict | stats | sweep | bench | data.

segjax train   --config experiments/unet_shapes.py --workdir runs/unet [--config.train.steps=500]
segjax eval    --workdir runs/unet [--checkpoint=best|latest|STEP] [--split=validation]
               [--mode=whole|slide] [--scales=0.75,1,1.25] [--flip]   (inference mode)
segjax predict --workdir runs/unet --input photos/ --output predictions/ [--mode ... as eval]
segjax stats   --config experiments/unet_shapes.py   (class pixel counts and weights, image sizes)
segjax data prepare NAME --manual_dir=DIR [--data_dir=DIR]   (a downloaded data set, read once
               and written as array_record into the TFDS data dir: cityscapes, ade20k, voc,
               voc_aug, pets, coco, coco_panoptic; train then reads it with config.data.root="")
segjax sweep   --config experiments/loss_ablation_shapes.py --workdir runs/ablation [--seeds 3]
               [--vectorized] [--variants=ce,dice_ce]   (the variants of the file's sweep();
               --config.a.b=... applies to all of them, a variant's own value of a key wins)
segjax bench   --config experiments/unet_shapes.py [--what=train,eval,predict,data] [--steps=10]
               [--repeats=5] [--json] [--paced] [--compilation_cache]
               (images/s, compile time, memory, FLOPs and utilisation)
"""

import json
import pathlib
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from segjax.errors import InputError, Interrupted, NonFiniteError

COMMANDS = ("train", "eval", "predict", "stats", "sweep", "bench", "data")

config_flags.DEFINE_config_file(
  "config", None, "Experiment config file, optionally with an argument: experiments/x.py:tiny."
)
flags.DEFINE_string("workdir", None, "Run directory: config, metrics, checkpoints, predictions.")
flags.DEFINE_string("checkpoint", "best", "eval/predict: best | latest | a step number.")
flags.DEFINE_string("split", None, "eval: the split to score (default: config.eval.split).")
flags.DEFINE_string("input", None, "predict: an image file or a folder of images.")
flags.DEFINE_string("output", None, "predict: the folder for label PNGs and overlays.")
flags.DEFINE_enum("mode", None, ["whole", "slide"], "eval/predict: config.eval.mode for this run.")
flags.DEFINE_list("scales", None, "eval/predict: test-time scales, e.g. 0.75,1,1.25.")
flags.DEFINE_bool("flip", None, "eval/predict: average over horizontal flips too.")
flags.DEFINE_integer("seeds", 1, "sweep: runs per variant (seeds config.seed + k).", lower_bound=1)
flags.DEFINE_bool("vectorized", False, "sweep: train the variants together, in one program.")
flags.DEFINE_list("variants", None, "sweep: only these variants of sweep(), e.g. ce,dice_ce.")
flags.DEFINE_list("what", ["train"], "bench: programs to measure: train, eval, predict, data.")
flags.DEFINE_integer("steps", 10, "bench: steps per timed repeat.", lower_bound=1)
flags.DEFINE_integer("repeats", 5, "bench: timed repeats (median and range).", lower_bound=1)
flags.DEFINE_bool("json", False, "bench: print one JSON object per measured program.")
flags.DEFINE_bool(
  "compilation_cache",
  False,
  "bench: let the persistent compilation cache serve (compile_s then shows a warm start).",
)
flags.DEFINE_bool(
  "paced", False, "bench: before each timed repeat print 'ready' and wait for a line on stdin."
)
flags.DEFINE_string("manual_dir", None, "data prepare: the folder of the unpacked official files.")
flags.DEFINE_string(
  "data_dir", "", "data prepare: the TFDS data dir to write (config.data.tfds_dir; '' = default)."
)
FLAGS = flags.FLAGS


def _fail(message: str) -> None:
  print(f"segjax: error: {message}", file=sys.stderr)
  sys.exit(2)


def _parse(argv: list[str]) -> list[str]:
  """Parses flags; a bad flag or config override ends with one line that names it."""
  try:
    return FLAGS(argv)
  except flags.Error as error:
    _fail(str(error))
  except (AttributeError, KeyError, TypeError, ValueError) as error:
    # ml_collections reports a misspelt override as an AttributeError whose text carries the
    # suggestion; unwrap it into a single message.
    message = error.args[0] if error.args else str(error)
    _fail(f"bad config override: {str(message).strip(chr(39)).replace(chr(10), ' ')}")


def _config():
  from segjax.train.loop import load_config

  if FLAGS.config is not None:
    return FLAGS.config
  if FLAGS.workdir is None:
    _fail("give --config, or a --workdir that holds a config.json.")
  return load_config(FLAGS.workdir)


def _inference_overrides(config):
  """--mode, --scales and --flip replace the run's `config.eval` inference settings."""
  if FLAGS.mode is not None:
    config.eval.mode = FLAGS.mode
  if FLAGS.scales is not None:
    try:
      config.eval.scales = tuple(float(s) for s in FLAGS.scales)
    except ValueError:
      _fail(f"--scales={','.join(FLAGS.scales)} must be numbers, e.g. --scales=0.75,1,1.25.")
  if FLAGS.flip is not None:
    config.eval.flip = FLAGS.flip
  return config


def _inference_name(config) -> str:
  """A short name of the inference mode: "whole", "slide", "slide_ms0.75-1-1.25_flip", ..."""
  name = config.eval.mode
  if tuple(config.eval.scales) != (1.0,):
    name += "_ms" + "-".join(f"{s:g}" for s in config.eval.scales)
  if config.eval.flip:
    name += "_flip"
  return name


def _restore(config):
  from segjax.data import open_dataset
  from segjax.train.loop import build, restore_state

  config = _inference_overrides(config)
  dataset = open_dataset(config.data, config.data.train_split)
  exp = build(config, dataset)
  step, state = restore_state(exp, FLAGS.workdir, FLAGS.checkpoint)
  return exp, step, state


def main(argv: list[str]) -> None:
  logging.set_verbosity(logging.WARNING)  # orbax and grain log every save at INFO
  try:
    _main(argv)
  except (InputError, NonFiniteError) as error:
    _fail(str(error))
  except Interrupted as error:  # a checkpoint was saved: exit as the signal would have
    print(error, flush=True)
    sys.exit(128 + error.signal)


def _main(argv: list[str]) -> None:
  if len(argv) < 2 or argv[1] not in COMMANDS or (len(argv) != 2) != (argv[1] == "data"):
    _fail(f"usage: segjax {{{'|'.join(COMMANDS)}}} [flags]; got {argv[1:]}.\n{__doc__}")
  command = argv[1]
  if command == "data":
    _data(argv[2:])
    return
  if command == "stats":
    _stats(_config())
    return
  if command == "bench":
    _bench()
    return
  if FLAGS.workdir is None:
    _fail(f"segjax {command} needs --workdir.")

  if command == "train":
    from segjax.train.loop import train

    if FLAGS.config is None:
      _fail("segjax train needs --config, e.g. --config experiments/unet_shapes.py.")
    train(FLAGS.config, FLAGS.workdir)

  elif command == "sweep":
    from segjax.sweep import load_variants, run_sweep

    if FLAGS.config is None:
      _fail("segjax sweep needs --config, a file with get_config() and sweep().")
    # The file again, for its sweep(); FLAGS.config already holds get_config(arg) + overrides.
    variants = load_variants(config_flags.get_config_filename(FLAGS["config"]), FLAGS.variants)
    run_sweep(FLAGS.config, variants, FLAGS.workdir, seeds=FLAGS.seeds, vectorized=FLAGS.vectorized)

  elif command == "eval":
    from segjax.data import open_dataset
    from segjax.train.evaluate import evaluate
    from segjax.train.logging import MetricWriter

    config = _config()
    exp, step, state = _restore(config)
    split = FLAGS.split or config.eval.split
    dataset = open_dataset(config.data, split)
    scores = evaluate(exp, state, dataset)
    mode = _inference_name(config)
    print(f"{split} at step {step} ({FLAGS.checkpoint}, {mode}):\n{exp.task.summary(scores)}")
    out = pathlib.Path(FLAGS.workdir) / "eval"
    out.mkdir(exist_ok=True)
    header = {"checkpoint": FLAGS.checkpoint, "inference": mode}
    record = {"step": step, "split": split, **header, **scores}
    suffix = "" if mode == "whole" else f"_{mode}"
    path = out / f"{split}_step{step}{suffix}.json"
    path.write_text(json.dumps(record, indent=2, default=str))
    writer = MetricWriter(FLAGS.workdir)
    writer.write(step, f"eval_{split}", {**header, **scores})
    writer.close()

  elif command == "predict":
    from segjax.predict import list_images, predict_files

    if FLAGS.input is None or FLAGS.output is None:
      _fail("segjax predict needs --input (an image or a folder) and --output (a folder).")
    inputs = list_images(FLAGS.input)
    exp, step, state = _restore(_config())
    predict_files(exp, state, inputs, FLAGS.output)
    print(
      f"Wrote the predictions and overlays of {len(inputs)} images to {FLAGS.output} "
      f"(checkpoint step {step})."
    )


def _stats(config) -> None:
  """Prints the train split's class pixel counts, the class weights each method gives, and its
  image sizes."""
  import numpy as np

  from segjax import config as config_lib
  from segjax.data.stats import train_statistics
  from segjax.losses import class_weights_from_counts

  config_lib.validate(config)
  dataset, stats = train_statistics(config.data)
  counts, sizes = stats["counts"], stats["sizes"]
  weights = {
    method: np.asarray(class_weights_from_counts(counts, method=method))
    for method in config_lib.CLASS_WEIGHTINGS
  }
  print(f"{config.data.name} {config.data.train_split}: {counts.sum():,} labelled pixels")
  print(f"{'class':<16}{'pixels':>14}{'fraction':>10}" + "".join(f"{m:>10}" for m in weights))
  for c, name in enumerate(dataset.class_names):
    row = f"{name:<16}{counts[c]:>14,}{counts[c] / max(counts.sum(), 1):>10.4f}"
    print(row + "".join(f"{w[c]:>10.3f}" for w in weights.values()))
  heights, widths = np.repeat(sizes[:, 0], sizes[:, 2]), np.repeat(sizes[:, 1], sizes[:, 2])
  print(
    f"\n{sizes[:, 2].sum():,} images, {len(sizes):,} distinct sizes (height x width); "
    f"height {heights.min()}-{heights.max()} (median {np.median(heights):g}), "
    f"width {widths.min()}-{widths.max()} (median {np.median(widths):g})"
  )
  for h, w, n in sizes[:10]:
    print(f"  {h:>5} x {w:<5} {n:>10,} images")
  if len(sizes) > 10:
    print(f"  ... {len(sizes) - 10:,} more sizes, {sizes[10:, 2].sum():,} images")


def _data(args: list[str]) -> None:
  """`segjax data prepare NAME --manual_dir=DIR [--data_dir=DIR]`."""
  from segjax.data import prepared

  if len(args) != 2 or args[0] != "prepare":
    _fail(
      f"usage: segjax data prepare NAME --manual_dir=DIR [--data_dir=DIR]; got {args}. NAME is "
      f"one of {', '.join(prepared.READERS)}."
    )
  name = args[1]
  if FLAGS.manual_dir is None:
    files = prepared.READERS[name][2] if name in prepared.READERS else "its official files"
    _fail(f"segjax data prepare {name} needs --manual_dir, the folder where {files} are unpacked.")
  data_config = FLAGS.config.data if FLAGS.config is not None else None
  prepared.prepare(name, FLAGS.manual_dir, FLAGS.data_dir, data_config)


def _bench() -> None:
  import dataclasses

  from segjax.bench import WHATS, benchmark, format_records

  if FLAGS.config is None:
    _fail("segjax bench needs --config, e.g. --config experiments/unet_shapes.py.")
  unknown = [w for w in FLAGS.what if w not in WHATS]
  if unknown:
    _fail(f"--what={','.join(FLAGS.what)}: {unknown} unknown; choose from {','.join(WHATS)}.")
  records = benchmark(
    FLAGS.config,
    tuple(FLAGS.what),
    steps=FLAGS.steps,
    repeats=FLAGS.repeats,
    before_repeat=_wait_for_turn if FLAGS.paced else lambda: None,
    compilation_cache=FLAGS.compilation_cache,
  )
  if FLAGS.json:
    for record in records:
      print(json.dumps(dataclasses.asdict(record)))
  else:
    print(format_records(records))


def _wait_for_turn() -> None:
  """`--paced`: says it is ready, then waits for a line, so that a driver can interleave the
  repeats of several benchmarks (benchmarks/compare.py)."""
  print("ready", flush=True)
  sys.stdin.readline()


def run() -> None:
  """Console entry point."""
  from segjax import runtime

  runtime.configure()
  runtime.initialize_distributed()
  app.run(main, flags_parser=_parse)


if __name__ == "__main__":
  run()

"""Evaluation over a whole split: summed statistics, scores, and a few overlays to look at."""

import functools
import pathlib
from typing import Any

import jax
import numpy as np
from PIL import Image

from segjax import config as config_lib
from segjax.data import Dataset
from segjax.data.loader import eval_batches
from segjax.inference import make_inference
from segjax.train import sharding


def inference_fn(model, config):
  """`(state, images: f32[B,H,W,3], **model_kwargs) -> outputs`: the model in `config.eval`'s
  inference mode.

  Whole-image inference returns every output of the model; sliding windows and test-time
  augmentation combine the `logits`. `model_kwargs` are the task's evaluation inputs of the model
  (the ground truth that promptable models simulate clicks from).
  """
  window, stride = config_lib.inference_window(config)
  combines_logits = config_lib.combines_logits(config)
  eval_config = config.eval

  def outputs_fn(state, images, **kwargs):
    variables = {"params": state.params}
    if jax.tree.leaves(state.batch_stats):
      variables["batch_stats"] = state.batch_stats
    apply = functools.partial(model.apply, variables, train=False, **kwargs)
    if not combines_logits:
      return apply(images)
    infer = make_inference(
      lambda x: apply(x)["logits"],
      mode=eval_config.mode,
      window_hw=window,
      stride_hw=stride,
      blend=eval_config.blend,
      scales=tuple(eval_config.scales),
      flip=eval_config.flip,
    )
    return {"logits": infer(images)}

  return outputs_fn


def make_eval_step(task, model, mesh, config, state_sharding):
  """`(state, batch) -> (stats, predictions)`; stats are summed over the global batch.
  `state_sharding`: the train state's shardings (a tree, or one for all)."""
  outputs_fn = inference_fn(model, config)

  def eval_step(state, batch):
    outputs = outputs_fn(state, task.inputs(batch), **task.model_kwargs(batch, train=False))
    return task.eval_stats(outputs, batch), task.predict(outputs)

  replicated = sharding.replicated(mesh)
  batch = sharding.batch_sharding(mesh)
  return jax.jit(eval_step, in_shardings=(state_sharding, batch), out_shardings=(replicated, batch))


def split_batches(exp, dataset: Dataset, *, limit: int | None = None):
  """This host's eval batches of `dataset` at the eval size (`config.eval.resize`), the last
  batch padded, with a `valid` mask."""
  return eval_batches(
    dataset,
    exp.config.data,
    exp.task.fields,
    batch_size=exp.config.eval.batch_size,
    image_size=config_lib.eval_image_size(exp.config),
    resize=exp.config.eval.resize,
    limit=limit,
  )


def evaluate(
  exp,
  state,
  dataset: Dataset,
  *,
  workdir: pathlib.Path | None = None,
  limit: int | None = None,
) -> dict[str, Any]:
  """Scores `state` on every example of `dataset` (or the first `limit`).

  Writes `config.eval.num_overlays` comparison images to `workdir/predictions/` when given.
  """
  config = exp.config
  total = None
  overlays: list[np.ndarray] = []
  for local in split_batches(exp, dataset, limit=limit):
    stats, predictions = exp.eval_step(state, sharding.to_global(local, exp.mesh))
    total = exp.task.accumulate(total, stats)
    if len(overlays) < config.eval.num_overlays:
      shown = {k: v[local["valid"]] for k, v in local.items()}
      local_pred = sharding.to_local(predictions)[local["valid"]]
      overlays += exp.task.render(shown, local_pred)[: config.eval.num_overlays - len(overlays)]
  if workdir is not None and jax.process_index() == 0:
    out = workdir / "predictions"
    out.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(overlays):
      Image.fromarray(image).save(out / f"{i:03d}.png")
  return exp.task.scores(jax.device_get(total))

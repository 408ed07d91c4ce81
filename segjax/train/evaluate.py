"""Evaluation over a whole split: summed statistics, scores, and a few overlays to look at."""

import pathlib
from typing import Any

import jax
import numpy as np
from PIL import Image

from segjax.data import Dataset
from segjax.data.loader import eval_batches
from segjax.train import sharding


def make_eval_step(task, model, mesh):
  """`(state, batch) -> (stats, predictions)`; stats are summed over the global batch."""

  def eval_step(state, batch):
    variables = {"params": state.params}
    if jax.tree.leaves(state.batch_stats):
      variables["batch_stats"] = state.batch_stats
    outputs = model.apply(variables, task.inputs(batch), train=False)
    return task.eval_stats(outputs, batch), task.predict(outputs)

  replicated = sharding.replicated(mesh)
  batch = sharding.batch_sharding(mesh)
  return jax.jit(eval_step, in_shardings=(replicated, batch), out_shardings=(replicated, batch))


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
  for local in eval_batches(
    dataset, config.data, exp.task.fields, batch_size=config.eval.batch_size, limit=limit
  ):
    stats, predictions = exp.eval_step(state, sharding.to_global(local, exp.mesh))
    total = stats if total is None else jax.tree.map(lambda a, b: a + b, total, stats)
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

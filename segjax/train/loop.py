"""The one training loop, for every segmentation flavour.

Read top to bottom: the run (config, workdir), mesh, data, model and task, state, step functions,
restore, loop, final evaluation. The loop never branches on the flavour: the Task does.
"""

import contextlib
import dataclasses
import json
import pathlib
import signal
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from segjax import config as config_lib
from segjax.convert.resnet import load_pretrained_backbone
from segjax.data import Dataset, open_dataset
from segjax.data.loader import train_stream
from segjax.errors import InputError, Interrupted, NonFiniteError
from segjax.models import MODELS, model_fields
from segjax.tasks import TASKS, Task
from segjax.train import sharding
from segjax.train.checkpoint import Checkpoints
from segjax.train.evaluate import evaluate, make_eval_step
from segjax.train.logging import MetricWriter, Progress
from segjax.train.state import (
  TrainState,
  create_state,
  learning_rate_schedule,
  make_optimizer,
  path_shapes,
  without_frozen,
)


# ----------------------------------------------------------------------------------------------
# The experiment: everything built from a config, shared by train, eval and predict.
# ----------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Experiment:
  config: ml_collections.ConfigDict
  mesh: jax.sharding.Mesh
  task: Task
  model: Any
  optimizer: optax.GradientTransformation
  abstract_state: TrainState  # shapes and shardings, for restoring
  eval_step: Any  # jitted (state, batch) -> (summable stats, predictions)

  @property
  def state_sharding(self):
    """The train state's shardings (a tree like the state)."""
    return jax.tree.map(lambda x: x.sharding, self.abstract_state)


def build(config: ml_collections.ConfigDict, dataset: Dataset) -> Experiment:
  """Validates `config` and builds mesh, task, model and optimiser for `dataset`'s classes."""
  config_lib.validate(config)
  mesh = sharding.make_mesh(config.mesh.model)
  sharding.check_batch_size(config.data.batch_size, mesh, "data.batch_size")
  sharding.check_batch_size(config.eval.batch_size, mesh, "eval.batch_size")
  task = TASKS[config.task](config, dataset)
  try:
    model = MODELS[config.model.name](
      **task.model_args(),
      dtype=jnp.dtype(config.model.dtype),
      **backbone_kwargs(config),
      **config.model.kwargs,
    )
  except TypeError as error:
    raise InputError(
      f"config.model.kwargs={config.model.kwargs.to_dict()} do not fit model "
      f"{config.model.name!r}: {error}"
    ) from error
  optimizer = make_optimizer(config)
  image_shape = (1, *config.data.image_size, 3)
  abstract = jax.eval_shape(lambda: create_state(model, optimizer, jax.random.key(0), image_shape))
  shardings = sharding.state_shardings(abstract, mesh)
  abstract = jax.tree.map(
    lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), abstract, shardings
  )
  eval_step = make_eval_step(task, model, mesh, config, shardings)
  return Experiment(config, mesh, task, model, optimizer, abstract, eval_step)


def backbone_kwargs(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The model's backbone arguments from `config.model.backbone` ({} for models without one)."""
  backbone = config.model.backbone
  fields = model_fields(MODELS[config.model.name])
  kwargs = {
    "output_stride": backbone.output_stride,  # U-Net's ResNet keeps all its strides
    "deep_stem": backbone.deep_stem,
    "avg_down": backbone.avg_down,
  }
  kwargs = {k: v for k, v in kwargs.items() if k in fields}
  if backbone.name and "backbone" in fields:
    kwargs["backbone"] = backbone.name
  return kwargs


def seed_key(seed: int) -> jax.Array:
  """The run's root key; the seed goes to the device explicitly, as the transfer guard asks."""
  return jax.random.key(jax.device_put(np.uint32(seed)))


def init_state(exp: Experiment, key: jax.Array) -> TrainState:
  """Parameters from `key`, then the backbone's from `config.model.backbone.pretrained` and the
  whole model's from `config.model.pretrained`, where set."""
  image_shape = (1, *exp.config.data.image_size, 3)
  init = jax.jit(
    lambda k: create_state(exp.model, exp.optimizer, k, image_shape),
    out_shardings=exp.state_sharding,
  )
  state = init(key)
  if exp.config.model.backbone.pretrained:
    state = load_pretrained_backbone(state, exp.model, exp.config.model.backbone.pretrained)
    state = jax.device_put(state, exp.state_sharding)
  if exp.config.model.pretrained:
    state = load_pretrained_model(state, exp, exp.config.model.pretrained)
  return state


def load_pretrained_model(state: TrainState, exp: Experiment, path: str) -> TrainState:
  """`state` with every variable from the checkpoint file `path`, which the model reads
  (`model.pretrained_variables`), and a fresh optimiser state for them.

  Raises:
    InputError: the file's variables do not have the model's paths and shapes.
  """
  variables = exp.model.pretrained_variables(str(pathlib.Path(path).expanduser()))
  loaded = {"params": variables["params"], "batch_stats": variables.get("batch_stats", {})}
  expected = {"params": state.params, "batch_stats": state.batch_stats}
  have, want = path_shapes(loaded), path_shapes(expected)
  for name in sorted(set(have) | set(want)):
    if have.get(name) != want.get(name):
      raise InputError(
        f"{path}: variable {name} has shape {have.get(name)} but the model's is "
        f"{want.get(name)} (None: absent); the checkpoint does not fit config.model."
      )
  loaded = jax.tree.map(lambda x: np.asarray(x, np.float32), loaded)
  params = loaded["params"]
  state = state.replace(
    params=params, batch_stats=loaded["batch_stats"], opt_state=exp.optimizer.init(params)
  )
  return jax.device_put(state, exp.state_sharding)


# ----------------------------------------------------------------------------------------------
# Step functions.
# ----------------------------------------------------------------------------------------------
def make_train_step(exp: Experiment):
  """`(state, batch, key) -> (state, metrics)`, compiled once, with the state donated.

  The step's randomness is `key` folded with the step number, so a resumed run draws the same.
  """
  task, model, optimizer = exp.task, exp.model, exp.optimizer
  schedule_lr = make_lr_fn(exp.config)
  frozen = tuple(exp.config.optimizer.frozen)
  inject = tuple(exp.config.train.inject_nonfinite_at)
  guard = exp.config.train.on_nonfinite in ("skip", "rollback")

  def train_step(state: TrainState, batch, key):
    rngs = step_rngs(key, state.step)
    images = task.inputs(batch)
    if inject:  # a fault for tests: NaN images at the chosen steps
      images = images * jnp.where(jnp.isin(state.step + 1, jnp.asarray(inject)), jnp.nan, 1.0)
    has_stats = bool(jax.tree.leaves(state.batch_stats))

    def loss_fn(params):
      variables = {"params": params, **({"batch_stats": state.batch_stats} if has_stats else {})}
      outputs, updates = model.apply(
        variables,
        images,
        train=True,
        rngs=rngs,
        mutable=["batch_stats"],
        **task.model_kwargs(batch, train=True),
      )
      loss, aux = task.loss(outputs, batch, state.step)
      return loss, (aux, updates.get("batch_stats", state.batch_stats))

    (loss, (aux, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    grads = without_frozen(grads, state.params, frozen)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    grad_norm = optax.global_norm(grads)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    if guard:  # a non-finite step changes nothing but the step count
      keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
      params, opt_state = keep(params, state.params), keep(opt_state, state.opt_state)
      batch_stats = keep(batch_stats, state.batch_stats)
    metrics = {"loss": loss, "grad_norm": grad_norm, "lr": schedule_lr(state.step)}
    metrics.update(aux)
    metrics["nonfinite"] = ~finite  # read at log and checkpoint time, never per step
    new_state = TrainState(state.step + 1, params, batch_stats, opt_state)
    return new_state, metrics

  state, replicated = exp.state_sharding, sharding.replicated(exp.mesh)
  return jax.jit(
    train_step,
    in_shardings=(state, sharding.batch_sharding(exp.mesh), replicated),
    out_shardings=(state, replicated),
    donate_argnums=0,
  )


def step_rngs(key: jax.Array, step: jax.Array) -> dict[str, jax.Array]:
  """The random streams of one training step: `dropout`, and `sample` (Mask R-CNN's anchor and
  RoI sampling), from the run's key folded with the step, so a resumed run draws the same."""
  dropout, sample = jax.random.split(jax.random.fold_in(key, step))
  return {"dropout": dropout, "sample": sample}


def make_lr_fn(config):
  return learning_rate_schedule(config.optimizer, config.schedule, config.train.steps)


# ----------------------------------------------------------------------------------------------
# The run.
# ----------------------------------------------------------------------------------------------
def check_writable(workdir: pathlib.Path) -> None:
  """Creates `workdir` and writes a probe file in it, so that an unwritable or full disk stops the
  run before data and model are built, not at the first checkpoint.

  Raises:
    InputError: naming the workdir and the system's reason.
  """
  probe = workdir / f".write_probe.{jax.process_index()}"
  try:
    workdir.mkdir(parents=True, exist_ok=True)
    probe.write_bytes(b"\0" * 4096)
    probe.unlink()
  except OSError as error:
    raise InputError(
      f"The workdir {workdir} cannot be written ({error.strerror or error}): choose a "
      "writable --workdir with free space."
    ) from error


def check_resumable(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> None:
  """Refuses to resume checkpoints that were trained with another config, naming what changed;
  `config.train.resume="force"` resumes anyway, and the keys of `config.RESUME_NEUTRAL` (how
  often to log, when to stop, ...) may always change.

  Raises:
    InputError: listing each changed key with its saved and its new value.
  """
  latest = workdir / "checkpoints" / "latest"
  resuming = latest.is_dir() and any(p.name.isdigit() for p in latest.iterdir())
  if config.train.resume == "force" or not resuming or not (workdir / "config.json").is_file():
    return
  saved = config_lib.flatten(json.loads(load_config(workdir).to_json_best_effort()))
  now = config_lib.flatten(json.loads(config.to_json_best_effort()))
  changed = [
    f"{key}: {saved.get(key)!r} -> {now.get(key)!r}"
    for key in sorted(set(saved) | set(now))
    if key not in config_lib.RESUME_NEUTRAL and saved.get(key) != now.get(key)
  ]
  if changed:
    raise InputError(
      f"The checkpoints in {workdir} were trained with its config.json, and this config differs:"
      "\n  " + "\n  ".join(changed) + "\nStart a new --workdir, set those keys back, or resume "
      "with the new values anyway: --config.train.resume=force."
    )


def write_config(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> None:
  """Writes config.json; a different earlier one is kept as config.<n>.json, never overwritten."""
  if jax.process_index() != 0:
    return
  path = workdir / "config.json"
  text = config.to_json_best_effort(indent=2, sort_keys=True)
  if path.exists() and path.read_text() != text:
    n = 1
    while (workdir / f"config.{n}.json").exists():
      n += 1
    path.rename(workdir / f"config.{n}.json")
    print(f"The config differs from the earlier run's; that one is kept as config.{n}.json.")
  path.write_text(text)


class StopSignal:
  """Turns SIGTERM/SIGINT into a flag so that the loop saves a checkpoint before it exits."""

  def __init__(self):
    self.received = None
    self._previous = {}

  def __enter__(self):
    for sig in (signal.SIGTERM, signal.SIGINT):
      # Outside the main thread signal() raises ValueError: signals stay with their owner.
      with contextlib.suppress(ValueError):
        self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    if self.received is not None:  # a second signal: stop at once
      raise KeyboardInterrupt
    self.received = signal.Signals(signum).name

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


def train(
  config: ml_collections.ConfigDict, workdir: str, *, stop_after: int | None = None
) -> dict[str, Any]:
  """Trains (or resumes) the run in `workdir`; returns the final evaluation's scores.

  Args:
    config: the experiment config.
    workdir: where config.json, metrics.jsonl, checkpoints/, events/ and predictions/ go.
    stop_after: stop (with a checkpoint) once this step is reached, as a preemption would; the
      schedule still spans `config.train.steps`. Overrides `config.train.stop_at`.

  Raises:
    InputError: bad config or data; a workdir whose checkpoints were trained with another config.
    NonFiniteError: a non-finite loss with `config.train.on_nonfinite="stop"`.
    Interrupted: SIGTERM or SIGINT arrived; a checkpoint of the last step was saved.
  """
  config_lib.validate(config)
  workdir_path = pathlib.Path(workdir)
  check_writable(workdir_path)
  check_resumable(config, workdir_path)

  # Data and model.
  dataset = open_dataset(config.data, config.data.train_split)
  exp = build(config, dataset)
  eval_dataset = open_dataset(config.data, config.eval.split)
  write_config(config, workdir_path)
  total = config.train.steps
  stream = train_stream(
    dataset, config.data, exp.task.fields, seed=config.seed, prepare=exp.task.prepare
  )

  # State: restored from the latest checkpoint, or initialised from the seed.
  init_key, train_key = jax.random.split(seed_key(config.seed))
  checkpoints = Checkpoints(workdir, keep=config.train.keep_checkpoints, metric=config.eval.metric)
  state = checkpoints.restore_latest(exp.abstract_state, stream)
  if state is None:
    state = init_state(exp, init_key)
  start = int(jax.device_get(state.step))
  if start:
    print(f"Resumed from step {start} in {workdir}.")
  if jax.process_count() > 1:
    print(f"Training on {jax.process_count()} processes, {jax.device_count()} devices.")
  writer = MetricWriter(workdir)
  if start >= total:
    print(f"Step {start} >= config.train.steps={total}: nothing to train.")

  train_step = make_train_step(exp)
  stop_at = stop_after if stop_after is not None else config.train.stop_at or total
  end = min(total, stop_at)
  progress = Progress(total, start)
  guard = NonFiniteGuard(config, dataset, lambda: init_state(exp, init_key))
  scores: dict[str, Any] = {}

  try:
    with StopSignal() as stop:
      for step in range(start + 1, end + 1):
        local = next(stream)
        examples = local.pop("index")
        state, metrics = train_step(state, sharding.to_global(local, exp.mesh), train_key)
        guard.add(step, metrics, examples)
        if step == start + 1:
          progress.restart_clock(step)  # the first step includes compilation

        stopping = stop.received  # read once: a signal may land anywhere below
        saving = due(config.train.checkpoint_every, step) or step == end or stopping
        if due(config.train.log_every, step) or step == end or saving:
          # Before a checkpoint too, so that no non-finite state is ever saved.
          state = guard.check(state, checkpoints, exp, progress)
        if due(config.train.log_every, step) or step == end or stopping:
          logged = guard.flush()
          logged["steps_per_sec"] = progress.update(step, logged)
          writer.write(step, "train", logged)

        if saving:
          checkpoints.save(step, state, stream)
        if due(config.train.eval_every, step) or step == total:
          scores = evaluate(exp, state, eval_dataset, workdir=workdir_path)
          writer.write(step, config.eval.split, scores)
          improved = checkpoints.save_best(step, state, scores)
          progress.message(
            f"eval @ {step}: {config.eval.metric} {scores[config.eval.metric]:.4f}"
            + (" (best so far)" if improved else "")
          )
          progress.restart_clock(step)
        if stopping:
          raise Interrupted(
            f"{stopping} received: saved the checkpoint of step {step} in {workdir}. Run "
            "the same command to resume from it.",
            signal.Signals[stopping].value,
          )

  finally:  # pending async saves finish even when a step fails
    checkpoints.close()
    writer.close()

  if scores and int(jax.device_get(state.step)) == total:
    progress.message(exp.task.summary(scores))
  return scores


class NonFiniteGuard:
  """Applies `config.train.on_nonfinite` to the steps since the last log.

  The step reports a `nonfinite` flag (and with "skip" or "rollback" has already left the update
  out); `check` reads the flags at log and checkpoint time only, so the loop never waits for the
  device per step.
  """

  def __init__(self, config, dataset: Dataset, initial_state):
    self.mode = config.train.on_nonfinite
    self.split = f"{config.data.name} {config.data.train_split}"
    self.name_of = getattr(dataset.source, "example_name", None)
    self.initial_state = initial_state
    self.pending: list[tuple[int, dict[str, jax.Array], np.ndarray]] = []
    self.checked = 0  # entries of `pending` already checked
    self.rolled_back_to: int | None = None

  def add(self, step: int, metrics: dict[str, jax.Array], examples: np.ndarray) -> None:
    self.pending.append((step, metrics, examples))

  def check(self, state: TrainState, checkpoints: Checkpoints, exp, progress) -> TrainState:
    """Stops, or rolls `state` back, if a step since the last check was not finite."""
    new = self.pending[self.checked :]
    self.checked = len(self.pending)
    flags = jax.device_get([metrics["nonfinite"] for _, metrics, _ in new])
    bad = [entry for entry, flag in zip(new, flags, strict=True) if flag]
    if not bad:
      return state
    if self.mode == "stop":
      raise NonFiniteError(self._message(*bad[0], checkpoints))
    if self.mode == "rollback":
      state = self._rollback(state, checkpoints, exp)
      to = self.rolled_back_to
      where = f"the checkpoint of step {to}" if to else "the initial weights"
      progress.message(f"non-finite loss at step {bad[0][0]}: rolled back to {where}")
    return state

  def flush(self) -> dict[str, Any]:
    """The mean metrics of the finite steps since the last log, the skipped ones counted."""
    host = jax.device_get([metrics for _, metrics, _ in self.pending])
    finite = [m for m in host if not m["nonfinite"]] or host
    logged = {k: float(np.mean([m[k] for m in finite])) for k in finite[0] if k != "nonfinite"}
    logged["skipped_steps"] = sum(int(m["nonfinite"]) for m in host)
    if self.rolled_back_to is not None:
      logged["rolled_back_to"] = self.rolled_back_to
    self.pending, self.checked, self.rolled_back_to = [], 0, None
    return logged

  def _rollback(self, state: TrainState, checkpoints: Checkpoints, exp) -> TrainState:
    """The last checkpoint's weights and optimiser state (the initial ones before the first), at
    the current step, so that the schedule and the data go on."""
    checkpoints.latest.wait_until_finished()
    if checkpoints.latest.latest_step() is None:
      restored, self.rolled_back_to = self.initial_state(), 0
    else:
      self.rolled_back_to, restored = checkpoints.restore("latest", exp.abstract_state)
    return restored.replace(step=state.step)

  def _message(self, step: int, metrics, examples: np.ndarray, checkpoints) -> str:
    values = jax.device_get(metrics)
    terms = ", ".join(
      f"{k}={float(v):.4g}" for k, v in values.items() if k.startswith("loss") or k == "grad_norm"
    )
    names = [self.name_of(int(i)) if self.name_of else f"#{int(i)}" for i in examples]
    saved = checkpoints.latest.latest_step()
    kept = f"the checkpoints up to step {saved} are kept" if saved else "no checkpoint was saved"
    return (
      f"The loss or its gradients became non-finite at step {step} ({terms}). Its batch (this "
      f"host's part) held these examples of {self.split}: {', '.join(names)}. Training stopped and "
      f"{kept}. Lower optimizer.learning_rate, check those examples, or set "
      "config.train.on_nonfinite=skip (leave such updates out) or rollback (go back to the last "
      "checkpoint)."
    )


def due(every: int, step: int) -> bool:
  """Whether an `every`-steps action (log, checkpoint, eval) happens at `step`; 0 means never."""
  return every > 0 and step % every == 0


def mean_metrics(metrics: list[dict[str, jax.Array]]) -> dict[str, jax.Array]:
  """The mean over steps of each metric (per variant, when metrics have a variant axis)."""
  return jax.tree.map(lambda *xs: jnp.mean(jnp.stack(xs), axis=0), *metrics)


def load_config(workdir: str | pathlib.Path) -> ml_collections.ConfigDict:
  """The config a run in `workdir` was trained with."""
  path = pathlib.Path(workdir) / "config.json"
  if not path.is_file():
    raise InputError(f"{path} is missing: is {workdir} a segjax workdir?")
  values = json.loads(path.read_text())
  config = config_lib.base_config()
  config.update_from_flattened_dict(config_lib.flatten(values))
  return config


def restore_state(exp: Experiment, workdir: str, which: str = "best") -> tuple[int, TrainState]:
  """The state saved in `workdir`: "best", "latest" or a step number."""
  checkpoints = Checkpoints(workdir, keep=1, metric=exp.config.eval.metric)
  try:
    return checkpoints.restore(which, exp.abstract_state)
  finally:
    checkpoints.close()

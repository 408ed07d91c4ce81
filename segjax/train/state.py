"""The train state and the optimiser that updates it."""

import re
from collections.abc import Sequence
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from segjax.errors import InputError


@flax.struct.dataclass
class TrainState:
  """Everything a step reads and writes; checkpointed whole.

  Attributes:
    step: i32[], updates applied so far.
    params: float32 model parameters.
    batch_stats: running statistics of batch norm ({} when the model has none).
    opt_state: the optimiser's state.
  """

  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any


def learning_rate_schedule(optimizer_config, schedule_config, total_steps: int) -> optax.Schedule:
  """Linear warmup to the peak, then cosine, poly or constant for the remaining steps."""
  peak = optimizer_config.learning_rate
  warmup = min(schedule_config.warmup_steps, max(total_steps - 1, 0))
  decay_steps = max(total_steps - warmup, 1)
  if schedule_config.name == "cosine":
    after = optax.cosine_decay_schedule(peak, decay_steps, alpha=schedule_config.end_factor)
  elif schedule_config.name == "poly":
    after = optax.polynomial_schedule(peak, 0.0, schedule_config.power, decay_steps)
  elif schedule_config.name == "constant":
    after = optax.constant_schedule(peak)
  else:
    raise ValueError(f"config.schedule.name={schedule_config.name!r} is not cosine|poly|constant.")
  if warmup == 0:
    return after
  return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), after], [warmup])


def _decay_mask(params):
  # Decay kernels only: biases and norm scales/offsets are 1-D.
  return jax.tree.map(lambda p: p.ndim > 1, params)


def path_name(path) -> str:
  """ "params/sam/image_encoder/blocks_0/attn/qkv/kernel": a key path joined by "/", the same for a
  dataclass field and the dict key orbax saves it as."""
  return "/".join(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)


def path_shapes(tree) -> dict[str, tuple[int, ...]]:
  """`{path_name: shape}` of the arrays (or shape structs, or orbax metadata) of `tree`."""
  return {path_name(p): tuple(x.shape) for p, x in jax.tree_util.tree_leaves_with_path(tree)}


def frozen_mask(params, patterns: Sequence[str]):
  """A tree of bools like `params`: True where a pattern (a regular expression, searched in the
  parameter's `path_name`) matches.

  Raises:
    InputError: a pattern that matches no parameter (a typo would otherwise train everything).
  """
  names = jax.tree_util.tree_map_with_path(lambda path, _: path_name(path), params)
  paths = jax.tree.leaves(names)
  for pattern in patterns:
    if not any(re.search(pattern, path) for path in paths):
      modules = sorted({path.rsplit("/", 2)[0] for path in paths})
      raise InputError(
        f"config.optimizer.frozen has {pattern!r}, which matches no parameter; paths look like "
        f"{paths[0]!r}. Modules: {modules[:12]}{' ...' if len(modules) > 12 else ''}."
      )
  return jax.tree.map(lambda name: any(re.search(p, name) for p in patterns), names)


def without_frozen(grads, params, patterns: Sequence[str]):
  """`grads` with zeros for the parameters `patterns` freeze, so that logging their norm does not
  keep them: XLA then never computes them."""
  if not patterns:
    return grads
  frozen = frozen_mask(params, patterns)
  return jax.tree.map(lambda g, f: jnp.zeros_like(g) if f else g, grads, frozen)


def make_optimizer(config) -> optax.GradientTransformation:
  """AdamW or SGD with Nesterov momentum, global-norm clipping and the schedule of `config`.

  Parameters matched by `config.optimizer.frozen` keep their values: no update, no weight decay,
  no optimiser state, and they are left out of the clipped norm.
  """
  schedule = learning_rate_schedule(config.optimizer, config.schedule, config.train.steps)
  if config.optimizer.name == "adamw":
    core = optax.adamw(schedule, weight_decay=config.optimizer.weight_decay, mask=_decay_mask)
  elif config.optimizer.name == "sgd":
    core = optax.chain(
      optax.add_decayed_weights(config.optimizer.weight_decay, mask=_decay_mask),
      optax.sgd(schedule, momentum=0.9, nesterov=True),
    )
  else:
    raise ValueError(f"config.optimizer.name={config.optimizer.name!r} is not adamw|sgd.")
  if config.optimizer.grad_clip_norm > 0:
    core = optax.chain(optax.clip_by_global_norm(config.optimizer.grad_clip_norm), core)
  patterns = tuple(config.optimizer.frozen)
  if not patterns:
    return core

  def labels(params):
    return jax.tree.map(lambda f: "frozen" if f else "trained", frozen_mask(params, patterns))

  return optax.multi_transform({"trained": core, "frozen": optax.set_to_zero()}, labels)


def create_state(model, optimizer, key: jax.Array, image_shape: tuple[int, ...]) -> TrainState:
  """Initialises parameters from `key` for images of `image_shape` ([B,H,W,3])."""
  variables = model.init(key, jnp.zeros(image_shape, jnp.float32), train=False)
  params = variables["params"]
  return TrainState(
    step=jnp.zeros((), jnp.int32),
    params=params,
    batch_stats=variables.get("batch_stats", {}),
    opt_state=optimizer.init(params),
  )

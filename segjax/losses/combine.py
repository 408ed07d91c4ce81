"""One loss from named, weighted terms: what `config.loss.terms` describes."""

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import jax.numpy as jnp

LossFn = Callable[..., jnp.ndarray]
# Options that `combine` reads itself rather than passing to the term's function.
OWN_OPTIONS = ("weight", "ramp_steps")


def required_inputs(fn: LossFn) -> tuple[str, ...]:
  """Keyword-only arguments without a default: arrays the caller supplies (`distance_maps`)."""
  return tuple(
    p.name
    for p in inspect.signature(fn).parameters.values()
    if p.kind is p.KEYWORD_ONLY and p.default is p.empty
  )


def term_options(fn: LossFn) -> tuple[str, ...]:
  """What a term of `fn` may set in `config.loss.terms`: `OWN_OPTIONS` and `fn`'s options.

  `fn`'s options are its keyword arguments with a default, but `ignore_index`, which `combine`
  passes to every term itself.
  """
  options = (
    p.name
    for p in inspect.signature(fn).parameters.values()
    if p.kind is p.KEYWORD_ONLY and p.default is not p.empty and p.name != "ignore_index"
  )
  return (*OWN_OPTIONS, *options)


def ramp(weight: float, ramp_steps, step):
  """`weight` scaled linearly from 0 at `ramp_steps[0]` to 1 at `ramp_steps[1]`."""
  if ramp_steps is None or step is None:
    return weight
  start, end = ramp_steps
  fraction = jnp.clip((step - start) / max(end - start, 1), 0.0, 1.0)
  return weight * fraction


def combine(
  terms: Mapping[str, float | Mapping[str, Any]],
  registry: Mapping[str, LossFn] | None = None,
  *,
  ignore_index: int = 255,
):
  """Builds `loss(logits, labels, *, step=None, **inputs) -> (total, {name: value})`.

  Args:
    terms: name -> weight, or name -> {"weight": w, "ramp_steps": (start, end), **options};
      options are keyword arguments of the term's function, e.g. {"focal": {"weight": 1.0,
      "gamma": 2.0}}. With `ramp_steps` the weight grows linearly from 0 at step `start` to `w`
      at step `end` (Kervadec et al. ramp the boundary loss in this way).
    registry: name -> loss function `(logits, labels, *, ignore_index, **options) -> f32[]`;
      `segjax.losses.LOSSES` when not given.
      Keyword-only arguments without a default (e.g. `distance_maps`) are inputs the caller
      passes to the returned function; `loss.inputs` lists them.
    ignore_index: passed to every term.
  Returns:
    A jit-able function of `logits: f32[B,H,W,C]`, `labels: i32[B,H,W]`, the training `step`
    (for ramps) and the extra inputs, returning the weighted sum and each unweighted term.
  Raises:
    ValueError: for an unknown term name.

  Example:
    >>> loss_fn = combine({"ce": 1.0, "dice": {"weight": 0.5}})
    >>> total, parts = loss_fn(logits, labels)
  """
  if registry is None:
    # Imported here: the package imports this module to build its registry.
    from segjax.losses import LOSSES as registry

  resolved = []
  for name, spec in terms.items():
    if name not in registry:
      raise ValueError(f"Unknown loss term {name!r}; known terms: {sorted(registry)}.")
    options = dict(spec) if isinstance(spec, Mapping) else {"weight": spec}
    weight = float(options.pop("weight", 1.0))
    ramp_steps = options.pop("ramp_steps", None)
    resolved.append((name, weight, ramp_steps, registry[name], options))

  def loss(logits: jnp.ndarray, labels: jnp.ndarray, *, step=None, **inputs):
    parts, total = {}, 0.0
    for name, weight, ramp_steps, fn, options in resolved:
      extra = {k: inputs[k] for k in required_inputs(fn)}
      parts[name] = fn(logits, labels, ignore_index=ignore_index, **extra, **options)
      total = total + ramp(weight, ramp_steps, step) * parts[name]
    return total, parts

  loss.inputs = tuple(sorted({k for *_, fn, _ in resolved for k in required_inputs(fn)}))
  return loss

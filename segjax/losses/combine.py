"""One loss from named, weighted terms: what `config.loss.terms` describes."""

from collections.abc import Callable, Mapping
from typing import Any

import jax.numpy as jnp

LossFn = Callable[..., jnp.ndarray]


def combine(
  terms: Mapping[str, float | Mapping[str, Any]],
  registry: Mapping[str, LossFn],
  *,
  ignore_index: int = 255,
) -> Callable[[jnp.ndarray, jnp.ndarray], tuple[jnp.ndarray, dict[str, jnp.ndarray]]]:
  """Builds `loss(logits, labels) -> (total, {name: term value})` from named terms.

  Args:
    terms: name -> weight, or name -> {"weight": w, **options}; options are keyword arguments of
      the term's function, e.g. {"focal": {"weight": 1.0, "gamma": 2.0}}.
    registry: name -> loss function `(logits, labels, *, ignore_index, **options) -> f32[]`.
    ignore_index: passed to every term.
  Returns:
    A jit-able function of `logits: f32[B,H,W,C]`, `labels: i32[B,H,W]` returning the weighted
    sum and each unweighted term (for logging).
  Raises:
    ValueError: for an unknown term name.

  Example:
    >>> loss_fn = combine({"ce": 1.0, "dice": 0.5}, LOSSES)
    >>> total, parts = loss_fn(logits, labels)
  """
  resolved = []
  for name, spec in terms.items():
    if name not in registry:
      raise ValueError(f"Unknown loss term {name!r}; known terms: {sorted(registry)}.")
    options = dict(spec) if isinstance(spec, Mapping) else {"weight": spec}
    weight = float(options.pop("weight", 1.0))
    resolved.append((name, weight, registry[name], options))

  def loss(logits: jnp.ndarray, labels: jnp.ndarray):
    parts = {
      name: fn(logits, labels, ignore_index=ignore_index, **options)
      for name, _, fn, options in resolved
    }
    total = sum(weight * parts[name] for name, weight, _, _ in resolved)
    return total, parts

  return loss

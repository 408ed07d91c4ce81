"""The device mesh and the layout of arrays on it: batches split over `data`, state replicated."""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from segjax.errors import InputError


def make_mesh() -> Mesh:
  """A one-axis mesh over every device of every host."""
  return Mesh(np.asarray(jax.devices()), ("data",))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec("data"))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def check_batch_size(batch_size: int, mesh: Mesh, key: str) -> None:
  if batch_size % mesh.size:
    raise InputError(
      f"config.{key}={batch_size} must be divisible by the {mesh.size} devices of the mesh; "
      f"use a multiple of {mesh.size}."
    )


def to_global(local_batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """Assembles each host's part of a batch into global arrays split over `data`."""
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in local_batch.items()}


def to_local(array: jax.Array) -> np.ndarray:
  """This host's rows of a batch-sharded global array, in order."""
  shards = sorted(array.addressable_shards, key=lambda s: s.index[0].start or 0)
  return np.concatenate([np.asarray(s.data) for s in shards])

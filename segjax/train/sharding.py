"""The device mesh and the layout of arrays on it.

The mesh has two axes: `data` (batches are split over it) and `model` (`config.mesh.model`
devices per replica; 1 by default). The train state is replicated over `data` and, where `model`
is larger than 1, each array of two or more dimensions is split over `model` along its last axis
that divides evenly: XLA's SPMD partitioner then computes every layer on the split weights and
inserts the collectives, so the parameters and optimiser moments of a large model (SAM ViT-H)
take 1/model of each device's memory.
"""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from segjax.errors import InputError


def make_mesh(model: int = 1) -> Mesh:
  """A (data, model) mesh over every device of every host, `model` consecutive devices (those of
  one host, where it has that many) to a replica."""
  devices = np.asarray(jax.devices())
  if model < 1 or devices.size % model:
    raise InputError(
      f"config.mesh.model={model} must divide the {devices.size} devices: use one of "
      f"{[m for m in range(1, devices.size + 1) if devices.size % m == 0]}."
    )
  return Mesh(devices.reshape(-1, model), ("data", "model"))


def state_shardings(abstract_state, mesh: Mesh):
  """A sharding for each array of `abstract_state`: replicated, or split over `model` along its
  last evenly dividing axis when the array has two or more dimensions."""
  model = mesh.shape["model"]

  def sharding_of(x) -> NamedSharding:
    if model == 1 or x.ndim < 2:
      return replicated(mesh)
    for axis in reversed(range(x.ndim)):
      if x.shape[axis] % model == 0:
        spec = [None] * x.ndim
        spec[axis] = "model"
        return NamedSharding(mesh, PartitionSpec(*spec))
    return replicated(mesh)

  return jax.tree.map(sharding_of, abstract_state)


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec("data"))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def check_batch_size(batch_size: int, mesh: Mesh, key: str) -> None:
  replicas = mesh.shape["data"]
  if batch_size % replicas:
    raise InputError(
      f"config.{key}={batch_size} must be divisible by the {replicas} devices of the mesh's data "
      f"axis; use a multiple of {replicas}."
    )


def to_global(local_batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """Assembles each host's part of a batch into global arrays split over `data`."""
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in local_batch.items()}


def to_local(array: jax.Array) -> np.ndarray:
  """This host's rows of a batch-sharded global array, in order."""
  shards = sorted(array.addressable_shards, key=lambda s: s.index[0].start or 0)
  return np.concatenate([np.asarray(s.data) for s in shards])

"""Checkpoints of a run: the latest few (state + data position) and the best by the eval metric.

Layout: `workdir/checkpoints/latest/<step>/` and `workdir/checkpoints/best/<step>/`, orbax steps
with items `state` (the TrainState) and `data` (the grain iterator's position).
"""

import pathlib
import time

import grain
import jax
import orbax.checkpoint as ocp
from absl import logging

from segjax.errors import InputError
from segjax.train.state import path_shapes


class Checkpoints:
  """Saves and restores the train state and the data stream's position."""

  def __init__(self, workdir: str | pathlib.Path, *, keep: int, metric: str):
    root = pathlib.Path(workdir).absolute() / "checkpoints"
    self.metric = metric
    self.latest = ocp.CheckpointManager(
      root / "latest", options=ocp.CheckpointManagerOptions(max_to_keep=max(keep, 1))
    )
    self.best = ocp.CheckpointManager(
      root / "best",
      options=ocp.CheckpointManagerOptions(
        max_to_keep=1, best_fn=lambda metrics: metrics[metric], best_mode="max"
      ),
    )

  def save(self, step: int, state, data_iterator) -> None:
    """Saves asynchronously; training goes on while orbax writes. Orbax writes into a temporary
    directory and renames it when complete, and deletes old steps only after that.

    Raises:
      InputError: the save failed (a full disk): the earlier checkpoints are intact.
    """
    if step in self.latest.all_steps():
      return
    try:
      self.latest.save(
        step,
        args=ocp.args.Composite(
          state=ocp.args.StandardSave(state), data=grain.checkpoint.CheckpointSave(data_iterator)
        ),
      )
    except OSError as error:
      kept = sorted(self.latest.all_steps())
      raise InputError(
        f"Saving the checkpoint of step {step} under {self.latest.directory} failed "
        f"({error.strerror or error}); the earlier checkpoints {kept} are intact. Free space "
        "(or choose another --workdir) and run the same command to resume."
      ) from error

  def save_best(self, step: int, state, scores: dict) -> bool:
    """Keeps `state` if its `scores[metric]` beats the best so far; returns whether it did."""
    value = float(scores[self.metric])
    best_step = self.best.best_step()
    if best_step is not None:
      best_value = self.best.metrics(best_step)[self.metric]
      if not value > best_value:
        return False
    if step in self.best.all_steps():
      return False
    self.best.save(
      step,
      args=ocp.args.Composite(state=ocp.args.StandardSave(state)),
      metrics={self.metric: value},
    )
    return True

  def restore_latest(self, abstract_state, data_iterator):
    """Restores the newest readable checkpoint into `data_iterator`; returns the state or None.

    A checkpoint that fails to read is moved aside (renamed `<step>.unreadable-<time>`, kept for
    inspection) and the next older one is tried.
    """
    for step in sorted(self.latest.all_steps(), reverse=True):
      try:
        saved = _saved_shapes(pathlib.Path(self.latest.directory) / str(step) / "state")
      except Exception as error:  # unreadable metadata: a broken checkpoint
        self._move_aside(step, error)
        continue
      _check_compatible(saved, abstract_state, pathlib.Path(self.latest.directory).parent)
      try:
        restored = self.latest.restore(
          step,
          args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state),
            data=grain.checkpoint.CheckpointRestore(data_iterator),
          ),
        )
        return restored["state"]
      except Exception as error:  # any failure to read: try an older one
        self._move_aside(step, error)
    return None

  def restore(self, which: str, abstract_state):
    """Restores only the state of `which`: "latest", "best" or a step number (as a string)."""
    if which == "best":
      manager, step = self.best, self.best.best_step()
      if step is None:  # no evaluation has finished: fall back to the newest state
        manager, step = self.latest, self.latest.latest_step()
    elif which == "latest":
      manager, step = self.latest, self.latest.latest_step()
    else:
      step = int(which)
      manager = self.best if step in self.best.all_steps() else self.latest
      if step not in manager.all_steps():
        raise InputError(
          f"--checkpoint={which}: no such step; saved steps are "
          f"{sorted(set(self.latest.all_steps()) | set(self.best.all_steps()))}."
        )
    if step is None:
      raise InputError(f"No checkpoint under {self.latest.directory.parent}.")
    directory = pathlib.Path(manager.directory)
    _check_compatible(_saved_shapes(directory / str(step) / "state"), abstract_state, directory)
    restored = manager.restore(
      step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state))
    )
    return step, restored["state"]

  def _move_aside(self, step: int, error: Exception) -> None:
    path = pathlib.Path(self.latest.directory) / str(step)
    target = path.with_name(f"{step}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
    print(
      f"Checkpoint {path} could not be read ({type(error).__name__}: {error}); "
      f"moved to {target}, trying an older one."
    )
    if jax.process_index() == 0 and path.exists():
      path.rename(target)
    self.latest.reload()

  def close(self) -> None:
    self.latest.wait_until_finished()
    self.best.wait_until_finished()
    self.latest.close()
    self.best.close()


def _saved_shapes(path: pathlib.Path) -> dict[str, tuple[int, ...]]:
  # Orbax warns that an item directory has no step metadata file, which is how it saves items.
  verbosity = logging.get_verbosity()
  logging.set_verbosity(logging.ERROR)
  try:
    metadata = ocp.StandardCheckpointer().metadata(path).item_metadata
  finally:
    logging.set_verbosity(verbosity)
  return path_shapes(metadata)


def _check_compatible(saved: dict, abstract_state, directory: pathlib.Path) -> None:
  """Refuses to restore a checkpoint of another model into this one, and says what differs.

  Arrays that are only missing (none extra, none reshaped) are what a damaged metadata file
  looks like; that case is left to the restore, which then treats the step as unreadable.
  """
  expected = path_shapes(abstract_state)
  missing, extra = sorted(expected.keys() - saved.keys()), sorted(saved.keys() - expected.keys())
  reshaped = sorted(k for k in expected.keys() & saved.keys() if expected[k] != saved[k])
  if not extra and not reshaped:
    return
  detail = (
    f"{len(missing)} arrays missing (e.g. {missing[:1]}), {len(extra)} unexpected "
    f"(e.g. {extra[:1]}), {len(reshaped)} with other shapes"
    + (
      f" (e.g. {reshaped[0]}: saved {saved[reshaped[0]]}, now {expected[reshaped[0]]})"
      if reshaped
      else ""
    )
  )
  raise InputError(
    f"The checkpoints in {directory} belong to a different model or optimiser than this config "
    f"builds: {detail}. Train into a new --workdir, or use the config the run was made with "
    "(config.json in the workdir)."
  )

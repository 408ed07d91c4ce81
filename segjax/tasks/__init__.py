"""Segmentation flavours, looked up by `config.task`."""

from segjax.tasks.base import Task
from segjax.tasks.semantic import SemanticTask

TASKS = {
  "semantic": SemanticTask,
}

__all__ = ["TASKS", "Task"]

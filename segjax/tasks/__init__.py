"""Segmentation flavours, looked up by `config.task`."""

from segjax.tasks.base import Task
from segjax.tasks.instance import InstanceTask
from segjax.tasks.semantic import SemanticTask

TASKS = {
  "semantic": SemanticTask,
  "instance": InstanceTask,
}

__all__ = ["TASKS", "InstanceTask", "SemanticTask", "Task"]

"""Segmentation flavours, looked up by `config.task`."""

from segjax.tasks.base import Task
from segjax.tasks.instance import InstanceTask
from segjax.tasks.panoptic import PanopticTask
from segjax.tasks.promptable import PromptableTask
from segjax.tasks.semantic import SemanticTask

TASKS = {
  "semantic": SemanticTask,
  "instance": InstanceTask,
  "panoptic": PanopticTask,
  "promptable": PromptableTask,
}

__all__ = ["TASKS", "InstanceTask", "PanopticTask", "PromptableTask", "SemanticTask", "Task"]

"""Data sets, looked up by `config.data.name`: `DATASETS[name](config.data, split)` opens one."""

from segjax.data.builders import cityscapes, coco, folder
from segjax.data.builders.coco_panoptic import load as load_coco_panoptic
from segjax.data.catalog import load_shapes
from segjax.data.dataset import Dataset

DATASETS = {
  "shapes": load_shapes,
  "folder": folder.load,
  "cityscapes": cityscapes.load,
  "coco": coco.load,
  "coco_panoptic": load_coco_panoptic,
}

__all__ = ["DATASETS", "Dataset"]

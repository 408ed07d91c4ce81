"""Data sets, looked up by `config.data.name`: `open_dataset(config.data, split)` opens one.

`DATASETS[name](config.data, split)` reads a data set from its files (`config.data.root`) or, for
`shapes`, builds it; `tfds:NAME` is any TFDS data set with an image and a mask; the data sets of
`segjax.data.prepared.READERS` are read from their prepared copy when `config.data.root` is "".
"""

from segjax.data import prepared
from segjax.data.builders import ade20k, cityscapes, coco, folder, pets, tfds_catalog, voc
from segjax.data.builders.coco_panoptic import load as load_coco_panoptic
from segjax.data.catalog import load_shapes
from segjax.data.dataset import Dataset

DATASETS = {
  "shapes": load_shapes,
  "folder": folder.load,
  "cityscapes": cityscapes.load,
  "ade20k": ade20k.load,
  "voc": voc.load,
  "voc_aug": voc.load_aug,
  "pets": pets.load,
  "coco": coco.load,
  "coco_panoptic": load_coco_panoptic,
}


def is_known(name: str) -> bool:
  """Whether `config.data.name=name` names a data set: a key of DATASETS or `tfds:NAME`."""
  return name in DATASETS or (name.startswith(tfds_catalog.PREFIX) and len(name) > 5)


def open_dataset(data_config, split: str) -> Dataset:
  """The split `split` of the data set `data_config.name`."""
  name = data_config.name
  if name.startswith(tfds_catalog.PREFIX):
    return tfds_catalog.load(data_config, split)
  if name in prepared.READERS and not data_config.root:
    return prepared.load(data_config, split)
  return DATASETS[name](data_config, split)


__all__ = ["DATASETS", "Dataset", "is_known", "open_dataset"]

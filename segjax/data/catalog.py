"""Opens the catalog data sets that segjax builds itself."""

import tensorflow_datasets as tfds

from segjax.data.builders import shapes, shapes_scene
from segjax.data.builders.tfds_source import TfdsSource, prepare
from segjax.data.dataset import Dataset
from segjax.errors import InputError


def _builder(cls: type[tfds.core.GeneratorBasedBuilder], data_config):
  variants = [c.name for c in cls.BUILDER_CONFIGS]
  if data_config.variant not in variants:
    raise InputError(
      f"config.data.variant={data_config.variant!r} is not a variant of {cls.name}: {variants}."
    )
  return cls(
    config=data_config.variant, data_dir=data_config.tfds_dir or None, file_format="array_record"
  )


def load_shapes(data_config, split: str) -> Dataset:
  builder = _builder(shapes.Shapes, data_config)
  prepare(builder)
  return Dataset(
    TfdsSource(builder, split),
    class_names=shapes_scene.CLASS_NAMES,
    things=shapes_scene.THING_CLASSES,
    stuff=shapes_scene.STUFF_CLASSES,
    cache_dir=builder.data_dir,
  )

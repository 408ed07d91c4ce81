"""The built-in `shapes` data set: procedural street-like scenes, generated from a seed.

Built on first use into the TFDS data dir as array_record (no download, no TensorFlow), then read
through TFDS's random-access data source. Carries semantic, panoptic and instance labels, so every
segmentation flavour trains on it.
"""

import io

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from segjax.data.builders import shapes_scene

SPLITS = {"train": 2000, "validation": 200}
# Split seeds are disjoint ranges so that no validation scene repeats a training one.
SPLIT_SEED_OFFSET = {"train": 0, "validation": 1_000_000}


def _png(array: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, format="PNG")
  return buffer.getvalue()


class ShapesConfig(tfds.core.BuilderConfig):
  """One image size of the data set."""

  def __init__(self, *, size: int, **kwargs):
    super().__init__(name=str(size), description=f"{size}x{size} scenes", **kwargs)
    self.size = size


class Shapes(tfds.core.GeneratorBasedBuilder):
  """Street-like scenes: stuff (sky, road, building, pole) and things (car, person, sign)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}  # noqa: RUF012 - TFDS declares it a dict
  BUILDER_CONFIGS = tuple(ShapesConfig(size=s) for s in (64, 128, 256))
  DEFAULT_CONFIG_NAME = "128"

  def _info(self) -> tfds.core.DatasetInfo:
    size = self.builder_config.size
    return tfds.core.DatasetInfo(
      builder=self,
      description=__doc__,
      features=tfds.features.FeaturesDict(
        {
          "image": tfds.features.Image(shape=(size, size, 3)),
          "semantic": tfds.features.Image(shape=(size, size, 1)),
          "panoptic": tfds.features.Tensor(shape=(size, size), dtype=np.int32, encoding="zlib"),
          "objects": tfds.features.Sequence(
            {
              "mask": tfds.features.Tensor(shape=(size, size), dtype=np.bool_, encoding="zlib"),
              "box": tfds.features.Tensor(shape=(4,), dtype=np.float32),
              "label": tfds.features.Tensor(shape=(), dtype=np.int64),
            }
          ),
        }
      ),
      metadata=tfds.core.MetadataDict(
        class_names=list(shapes_scene.CLASS_NAMES),
        things=list(shapes_scene.THING_CLASSES),
        stuff=list(shapes_scene.STUFF_CLASSES),
      ),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing to download
    return {split: self._generate_examples(split) for split in SPLITS}

  def _generate_examples(self, split: str):
    size = self.builder_config.size
    for index in range(SPLITS[split]):
      scene = shapes_scene.render_scene(SPLIT_SEED_OFFSET[split] + index, size=size)
      yield (
        index,
        {
          # Encoded here: TFDS's own PNG encoder needs TensorFlow, its decoder does not.
          "image": _png(scene["image"]),
          "semantic": _png(scene["semantic"]),
          "panoptic": scene["panoptic"].astype(np.int32),
          "objects": {
            "mask": scene["masks"],
            "box": scene["boxes"].astype(np.float32),
            "label": scene["labels"].astype(np.int64),
          },
        },
      )

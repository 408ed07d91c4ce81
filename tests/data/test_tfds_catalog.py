"""`config.data.name = "tfds:NAME"`: a tiny registered TFDS builder, built as array_record into a
temporary dir and read back by name through `tfds.builder`, and one clear error per bad setting."""

import io

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from segjax.config import base_config
from segjax.data.builders import tfds_catalog
from segjax.errors import InputError

NAME = "segjax_test_masks"  # the registered name of the builder below
CLASS_NAMES = ("pet", "background", "border")  # mask values 1, 2, 3 with label_offset=1
# Hand-written masks, 2x3: values 1..3 are classes, 0 is unlabelled, 255 is void.
MASKS = (
  np.array([[1, 2, 3], [0, 255, 1]], np.uint8),
  np.array([[3, 3, 2], [2, 1, 0]], np.uint8),
  np.array([[0, 0, 255], [1, 2, 3]], np.uint8),
)
# The same masks as segjax labels: value - 1, 0 -> 255, 255 stays 255.
EXPECTED = (
  np.array([[0, 1, 2], [255, 255, 0]], np.uint8),
  np.array([[2, 2, 1], [1, 0, 255]], np.uint8),
  np.array([[255, 255, 255], [0, 1, 2]], np.uint8),
)


def _image(index: int) -> np.ndarray:
  return np.random.default_rng(index).integers(0, 256, (2, 3, 3), dtype=np.uint8)


def _png(array: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, format="PNG")
  return buffer.getvalue()


class SegjaxTestMasks(tfds.core.GeneratorBasedBuilder):
  """Three train and one test example of 2x3 images and trimap-like masks (values 0..3, 255)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}  # noqa: RUF012 - TFDS declares it a dict

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
      builder=self,
      features=tfds.features.FeaturesDict(
        {
          "image": tfds.features.Image(shape=(None, None, 3)),
          "segmentation_mask": tfds.features.Image(shape=(None, None, 1)),
          "label": tfds.features.ClassLabel(names=["cat", "dog"]),
        }
      ),
      metadata=tfds.core.MetadataDict(class_names=["unlabelled", *CLASS_NAMES]),
      disable_shuffling=True,  # examples in the order written
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing to download
    return {"train": self._generate_examples(range(3)), "test": self._generate_examples([0])}

  def _generate_examples(self, indices):
    for i in indices:
      # Encoded here: TFDS's own PNG encoder needs TensorFlow, its decoder does not.
      mask = {"image": _png(_image(i)), "segmentation_mask": _png(MASKS[i])}
      yield i, {**mask, "label": i % 2}


@pytest.fixture(scope="module")
def built_dir(tmp_path_factory) -> str:
  """A TFDS data dir holding segjax_test_masks/1.0.0 as array_record."""
  path = tmp_path_factory.mktemp("tfds_catalog")
  SegjaxTestMasks(data_dir=str(path), file_format="array_record").download_and_prepare()
  return str(path)


def _config(tfds_dir: str, **overrides):
  data = base_config().data
  data.name, data.tfds_dir = f"tfds:{NAME}", tfds_dir
  data.class_names, data.label_offset = CLASS_NAMES, 1
  for key, value in overrides.items():
    data[key] = value
  return data


def test_examples_decode_to_the_written_masks_with_the_offset_applied(built_dir):
  dataset = tfds_catalog.load(_config(built_dir, name=f"tfds:{NAME}:1.0.0"), "train")
  assert dataset.class_names == CLASS_NAMES
  assert dataset.cache_dir.startswith(built_dir)
  assert len(dataset.source) == 3
  for i, expected in enumerate(EXPECTED):
    example = dataset.source[i]
    assert sorted(example) == ["image", "semantic"]
    assert example["semantic"].dtype == np.uint8
    np.testing.assert_array_equal(example["semantic"], expected)
    np.testing.assert_array_equal(example["image"], _image(i))


def test_without_offset_masks_are_read_as_they_are(built_dir):
  config = _config(built_dir, label_offset=0, class_names=("unlabelled", *CLASS_NAMES))
  semantic = tfds_catalog.load(config, "train").source[0]["semantic"]
  np.testing.assert_array_equal(semantic, MASKS[0])


def test_a_split_slice_has_its_examples(built_dir):
  dataset = tfds_catalog.load(_config(built_dir), "train[:2]")
  assert len(dataset.source) == 2
  np.testing.assert_array_equal(dataset.source[1]["semantic"], EXPECTED[1])
  assert len(tfds_catalog.load(_config(built_dir), "test").source) == 1


def test_a_data_set_not_built_says_how_to_build_it(tmp_path):
  with pytest.raises(InputError, match=rf"tfds:{NAME}' is not built.*tfds build {NAME}"):
    tfds_catalog.load(_config(str(tmp_path)), "train")


def test_an_unknown_name_is_reported_with_tfds_message(tmp_path):
  with pytest.raises(InputError, match=r"TFDS knows no data set 'segjax_no_such_masks'.*not found"):
    tfds_catalog.load(_config(str(tmp_path), name="tfds:segjax_no_such_masks"), "train")


def test_a_data_set_built_as_tfrecord_says_to_rebuild(built_dir, monkeypatch):
  tfrecord = {tfds.core.file_adapters.FileFormat.TFRECORD}
  monkeypatch.setattr(tfds.core.DatasetInfo, "available_file_formats", lambda self: tfrecord)
  with pytest.raises(InputError, match=r"built in .* as tfrecord.*array_record"):
    tfds_catalog.load(_config(built_dir), "train")


@pytest.mark.parametrize("config_key", ["image_key", "label_key"])
def test_a_missing_feature_lists_the_features(built_dir, config_key):
  with pytest.raises(
    InputError, match=rf"config.data.{config_key}='picture' is not a feature.*'segmentation_mask'"
  ):
    tfds_catalog.load(_config(built_dir, **{config_key: "picture"}), "train")


def test_a_feature_that_is_no_mask_is_refused(built_dir):
  with pytest.raises(InputError, match=r"config.data.label_key='label' has shape \(\)"):
    tfds_catalog.load(_config(built_dir, label_key="label"), "train")


def test_empty_class_names_lists_the_names_it_found(built_dir):
  with pytest.raises(
    InputError, match=r"config.data.class_names is empty.*class_names=\(\.\.\.\).*'unlabelled'"
  ):
    tfds_catalog.load(_config(built_dir, class_names=()), "train")


def test_an_ignore_index_that_is_a_class_id_is_refused(built_dir):
  with pytest.raises(InputError, match=r"config\.data\.ignore_index=2 is a class id"):
    tfds_catalog.load(_config(built_dir, ignore_index=2), "train")


@pytest.mark.parametrize("split", ["validation", "validation[:10%]"])
def test_an_unknown_split_lists_the_splits(built_dir, split):
  with pytest.raises(
    InputError, match=rf"Split '{split[:10]}.*\['test', 'train'\].*config.eval.split='test'"
  ):
    tfds_catalog.load(_config(built_dir), split)


def test_grey_images_get_three_channels_and_wide_masks_are_refused():
  grey = np.arange(6, dtype=np.uint8).reshape(2, 3, 1)
  table = tfds_catalog.label_table(offset=0, ignore_index=255, num_classes=3)
  ok = {"picture": grey, "mask": np.array([[0, 1, 2], [255, 1, 0]], np.int64)}
  wide = {"picture": grey, "mask": np.array([[0, 1, 2], [256, 1, 0]], np.int32)}
  source = tfds_catalog.TfdsCatalogSource(
    [ok, wide], image_key="picture", label_key="mask", table=table
  )
  example = source[0]
  assert example["image"].shape == (2, 3, 3)
  np.testing.assert_array_equal(example["image"][..., 2], grey[..., 0])
  np.testing.assert_array_equal(example["semantic"], ok["mask"])
  assert example["semantic"].dtype == np.uint8
  with pytest.raises(InputError, match=r"Example 1: mask 'mask' .* is int32 with values 0\.\.256"):
    source[1]


def test_label_table_maps_values_below_the_offset_to_void_and_keeps_void():
  table = tfds_catalog.label_table(offset=2, ignore_index=255, num_classes=3)
  np.testing.assert_array_equal(
    table[[0, 1, 2, 3, 4, 200, 254, 255]], [255, 255, 0, 1, 2, 198, 252, 255]
  )

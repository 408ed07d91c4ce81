"""`segjax data prepare`: a download written once as array_record reads back as the files do."""

import numpy as np
import pytest
from fake_ade20k import write_ade20k
from fake_cityscapes import write_cityscapes
from fake_pets import write_pets
from fake_voc import write_voc
from PIL import Image

from segjax.config import base_config
from segjax.data import open_dataset, prepared
from segjax.data.builders.cityscapes import CityscapesError
from segjax.errors import InputError


def _data_config(name, tfds_dir, root=""):
  config = base_config()
  config.data.name, config.data.tfds_dir, config.data.root = name, str(tfds_dir), str(root)
  return config.data


def _assert_same_examples(a, b):
  assert len(a.source) == len(b.source) > 0
  for index in range(len(a.source)):
    x, y = a.source[index], b.source[index]
    assert sorted(x) == sorted(y)
    for field in x:
      np.testing.assert_array_equal(x[field], y[field], err_msg=f"{field} of example {index}")


def test_prepared_cityscapes_equals_the_files_example_for_example(tmp_path):
  raw = tmp_path / "cityscapes"
  write_cityscapes(raw, "train", ("aachen", "bochum", "bremen"), (12, 16), random_labels=True)
  write_cityscapes(raw, "val", ("frankfurt",), (12, 16), random_labels=True)
  prepared.prepare("cityscapes", str(raw), str(tmp_path / "tfds"))
  for split in ("train", "validation"):
    built = open_dataset(_data_config("cityscapes", tmp_path / "tfds"), split)
    files = open_dataset(_data_config("cityscapes", tmp_path / "tfds", raw), split)
    _assert_same_examples(built, files)
    assert built.class_names == files.class_names and len(built.class_names) == 19
    assert built.things == tuple(range(11, 19)) and built.stuff == tuple(range(11))
    assert built.colors[0] == (128, 64, 128)  # road, Cityscapes' own colour
  assert built.source[0]["panoptic"].dtype == np.int32


def test_prepared_voc_aug_keeps_the_images_and_the_sbd_labels(tmp_path):
  raw = write_voc(tmp_path / "voc", size=(10, 14))
  prepared.prepare("voc_aug", str(raw), str(tmp_path / "tfds"))
  built = open_dataset(_data_config("voc_aug", tmp_path / "tfds"), "train")
  _assert_same_examples(built, open_dataset(_data_config("voc_aug", tmp_path, raw), "train"))
  # The JPEG itself is stored: decoding the build gives what PIL decodes from the file.
  jpeg = raw / "VOCdevkit/VOC2012/JPEGImages/a.jpg"
  np.testing.assert_array_equal(built.source[0]["image"], np.asarray(Image.open(jpeg)))
  assert "panoptic" not in built.source[0] and built.class_names[15] == "person"


def test_a_greyscale_jpeg_is_stored_as_rgb(tmp_path):
  raw = write_pets(tmp_path / "pets", grayscale=("Abyssinian_1",))
  prepared.prepare("pets", str(raw), str(tmp_path / "tfds"))
  built = open_dataset(_data_config("pets", tmp_path / "tfds"), "train")
  grey = np.asarray(Image.open(raw / "images/Abyssinian_1.jpg"))
  files = open_dataset(_data_config("pets", tmp_path, raw), "train").source
  index = next(i for i in range(len(files)) if files.example_name(i).endswith("Abyssinian_1.jpg"))
  image = built.source[index]["image"]
  assert image.shape == (*grey.shape, 3)
  for channel in range(3):
    np.testing.assert_array_equal(image[..., channel], grey)


def test_cli_prepares_once_and_keeps_a_build_that_exists(cli, tmp_path):
  raw = write_ade20k(tmp_path / "ade", "training", count=3)
  write_ade20k(tmp_path / "ade", "validation", count=1)
  args = ("data", "prepare", "ade20k", f"--manual_dir={raw}", f"--data_dir={tmp_path / 'tfds'}")
  first = cli(*args)
  assert "Prepared ade20k: train 3, validation 1 examples" in first.stdout
  built = open_dataset(_data_config("ade20k", tmp_path / "tfds"), "validation")
  assert len(built.class_names) == 150 and len(built.source) == 1
  assert "already prepared" in cli(*args).stdout


def test_reading_an_unprepared_data_set_says_how_to_prepare_it(tmp_path):
  with pytest.raises(
    InputError, match=r"cityscapes is not prepared in .*segjax data prepare cityscapes"
  ):
    open_dataset(_data_config("cityscapes", tmp_path / "tfds"), "train")


def test_bad_prepare_requests_are_named(tmp_path):
  with pytest.raises(InputError, match=r"--manual_dir='.*missing' is not a folder: unpack"):
    prepared.prepare("cityscapes", str(tmp_path / "missing"), str(tmp_path / "tfds"))
  with pytest.raises(InputError, match=r"'kitti' cannot be prepared; .*'cityscapes'"):
    prepared.prepare("kitti", str(tmp_path), str(tmp_path / "tfds"))


def test_a_download_with_missing_files_stops_with_the_readers_error_and_builds_nothing(tmp_path):
  raw = write_cityscapes(tmp_path / "cityscapes", "train")  # no val/
  with pytest.raises(CityscapesError, match=r"gtFine_trainvaltest\.zip|leftImg8bit_trainvaltest"):
    prepared.prepare("cityscapes", str(raw), str(tmp_path / "tfds"))
  assert not prepared.builder("cityscapes", str(tmp_path / "tfds")).is_prepared()


def test_another_ignore_index_than_the_builds_is_refused(tmp_path):
  raw = write_pets(tmp_path / "pets")
  prepared.prepare("pets", str(raw), str(tmp_path / "tfds"))
  config = _data_config("pets", tmp_path / "tfds")
  config.ignore_index = 254
  with pytest.raises(InputError, match=r"ignore_index=254, but pets was prepared .* 255"):
    open_dataset(config, "train")


@pytest.mark.parametrize("name", ["coco", "coco_panoptic"])
def test_prepared_coco_equals_the_files_and_keeps_the_jpeg_bytes(name, tmp_path):
  from fake_coco import write_coco, write_coco_panoptic

  write = write_coco if name == "coco" else write_coco_panoptic
  raw = tmp_path / "coco"
  for split_dir in ("train2017", "val2017"):
    write(raw, split_dir)
  prepared.prepare(name, str(raw), str(tmp_path / "tfds"))
  built = open_dataset(_data_config(name, tmp_path / "tfds"), "validation")
  files = open_dataset(_data_config(name, tmp_path / "tfds", raw), "validation")
  _assert_same_examples(built, files)
  assert built.class_names == files.class_names and built.things == files.things
  assert built.category_ids == files.category_ids
  # The JPEG file's own bytes are what is stored, not a re-encoding.
  source = files.source
  assert prepared._image_bytes(source, 0, source[0]["image"]) == source.image_file(0).read_bytes()
  assert source.image_file(0).suffix == ".jpg"

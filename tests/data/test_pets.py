"""Oxford-IIIT Pet trimaps from the official layout: values 1, 2, 3 to pet, background, border."""

import numpy as np
import pytest
from fake_pets import write_pets

from segjax.config import base_config
from segjax.data.builders import pets
from segjax.data.builders.pets import PetsError


def _load(root, split="train", **data):
  config = base_config()
  config.data.root = str(root)
  config.data.update(data)
  return pets.load(config.data, split)


def test_trimap_values_become_classes_and_the_rest_void(tmp_path):
  dataset = _load(write_pets(tmp_path))
  assert dataset.class_names == ("pet", "background", "border")
  assert len(dataset.colors) == 3 and len(set(dataset.colors)) == 3
  example = dataset.source[0]
  assert example["image"].shape == (6, 8, 3) and example["image"].dtype == np.uint8
  assert example["semantic"].dtype == np.uint8
  # Trimap values 0, 1, 2, 3, 4, 0, 1, ... in raster order.
  np.testing.assert_array_equal(
    example["semantic"][:2], [[255, 0, 1, 2, 255, 255, 0, 1], [2, 255, 255, 0, 1, 2, 255, 255]]
  )


def test_the_split_lists_decide_membership(tmp_path):
  assert pets.SPLITS == {"train": "trainval", "validation": "test"}
  root = write_pets(tmp_path, unlisted=("pug_9",))
  (root / "annotations/trainval.txt").write_text(
    "#Image CLASS-ID SPECIES BREED ID\n#ID: 1:37 Class ids\nbeagle_2 13 2 2\n\nBombay_3 8 1 4\n"
  )
  (root / "annotations/test.txt").write_text("Abyssinian_1 1 1 1\n")
  train, validation = _load(root, "train").source, _load(root, "validation").source
  assert [train.image_file(i).name for i in range(len(train))] == ["beagle_2.jpg", "Bombay_3.jpg"]
  assert [validation.image_file(i).name for i in range(len(validation))] == ["Abyssinian_1.jpg"]
  assert train.example_name(1).endswith("images/Bombay_3.jpg")


def test_a_grayscale_jpeg_decodes_to_three_channels(tmp_path):
  root = write_pets(tmp_path, grayscale=("beagle_2",))
  image = _load(root).source[1]["image"]
  assert image.shape == (6, 8, 3)
  np.testing.assert_array_equal(image[..., 0], image[..., 2])


def test_missing_folders_and_files_are_named(tmp_path):
  with pytest.raises(PetsError, match=r"images is missing: download images\.tar\.gz"):
    _load(tmp_path)
  root = write_pets(tmp_path / "a")
  (root / "annotations/trimaps/beagle_2.png").unlink()
  with pytest.raises(
    PetsError,
    match=r"trimaps/beagle_2\.png is missing, but .*trainval\.txt "
    r"lists beagle_2: unpack annotations\.tar\.gz",
  ):
    _load(root)
  root = write_pets(tmp_path / "b")
  (root / "images/Bombay_3.jpg").unlink()
  with pytest.raises(
    PetsError,
    match=r"images/Bombay_3\.jpg is missing, but .*test\.txt lists "
    r"Bombay_3: unpack images\.tar\.gz",
  ):
    _load(root, "validation")
  (root / "annotations/test.txt").unlink()
  with pytest.raises(PetsError, match=r"test\.txt cannot be read"):
    _load(root, "validation")
  with pytest.raises(PetsError, match=r"ignore_index=0"):
    _load(root, ignore_index=0)

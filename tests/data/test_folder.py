"""The `folder` data set: a user's images and masks, and one clear error per kind of bad file."""

import json

import numpy as np
import pytest
from PIL import Image
from user_datasets import open_dataset

from segjax.config import base_config
from segjax.data.builders.folder import FolderError
from segjax.errors import InputError
from segjax.tasks import TASKS


def _write(root, split="train", n=3, size=(12, 10), instances=False):
  """Random images and masks of classes 0..2 and void; with `instances`, 8-bit instance masks:
  odd ids on cat, even ids on dog, some thing pixels without an instance, void pixels with one."""
  (root / split / "images").mkdir(parents=True)
  (root / split / "masks").mkdir(parents=True)
  if instances:
    (root / split / "instances").mkdir(parents=True)
  (root / "classes.json").write_text(json.dumps(["background", "cat", "dog"]))
  rng = np.random.default_rng(0)
  for i in range(n):
    image = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
    mask = rng.choice(np.array([0, 1, 2, 255], np.uint8), size)
    Image.fromarray(image).save(root / split / "images" / f"im{i}.jpg")
    Image.fromarray(mask).save(root / split / "masks" / f"im{i}.png")
    if instances:
      k = rng.integers(0, 4, size)  # 0: no instance
      ids = np.where((k > 0) & (mask != 0), 2 * k - 2 + np.minimum(mask, 2), 0)
      Image.fromarray(ids.astype(np.uint8)).save(root / split / "instances" / f"im{i}.png")
  return root


def _read(path):
  return np.asarray(Image.open(path))


def _panoptic(semantic, instances):
  """class * 1000 + instance, void -> 255 * 1000, computed apart from the loader."""
  expected = semantic.astype(np.int64) * 1000 + instances.astype(np.int64)
  return np.where(semantic == 255, 255_000, expected)


def _open(root, split="train"):
  return open_dataset("folder", root, split)


def test_reads_images_masks_and_class_names(tmp_path):
  dataset = _open(_write(tmp_path))
  assert dataset.class_names == ("background", "cat", "dog")
  assert len(dataset.source) == 3
  example = dataset.source[1]
  assert example["image"].shape == (12, 10, 3) and example["image"].dtype == np.uint8
  expected = np.asarray(Image.open(tmp_path / "train/masks/im1.png"))
  np.testing.assert_array_equal(example["semantic"], expected)


def test_missing_mask_names_the_image_and_the_expected_mask(tmp_path):
  root = _write(tmp_path)
  (root / "train/masks/im2.png").unlink()
  with pytest.raises(FolderError, match=r"im2\.jpg has no mask: expected .*masks/im2\.png"):
    _open(root)


def test_size_mismatch_names_both_files(tmp_path):
  root = _write(tmp_path)
  Image.fromarray(np.zeros((5, 5), np.uint8)).save(root / "train/masks/im0.png")
  with pytest.raises(FolderError, match=r"im0\.png is 5x5 but .*im0\.jpg is 10x12"):
    _open(root)


def test_label_that_is_neither_class_nor_ignore(tmp_path):
  root = _write(tmp_path)
  mask = np.zeros((12, 10), np.uint8)
  mask[0, 0] = 7
  Image.fromarray(mask).save(root / "train/masks/im1.png")
  with pytest.raises(FolderError, match=r"im1\.png has label values \[7\].*ignore_index=255"):
    _open(root)


def test_unreadable_image(tmp_path):
  root = _write(tmp_path)
  (root / "train/images/im0.jpg").write_bytes(b"not a jpeg")
  with pytest.raises(FolderError, match=r"im0\.jpg cannot be read as an image"):
    _open(root)


def test_colour_mask_is_rejected_with_the_fix(tmp_path):
  root = _write(tmp_path)
  Image.fromarray(np.zeros((12, 10, 3), np.uint8)).save(root / "train/masks/im0.png")
  with pytest.raises(FolderError, match=r"im0\.png has mode RGB.*single-channel"):
    _open(root)


def test_missing_classes_json_and_missing_split(tmp_path):
  root = _write(tmp_path)
  with pytest.raises(FolderError, match=r"validation is missing.*\['train'\]"):
    _open(root, "validation")
  (root / "classes.json").unlink()
  with pytest.raises(FolderError, match=r"classes\.json is missing"):
    _open(root)


def test_panoptic_is_class_times_1000_plus_instance_with_void(tmp_path):
  root = _write(tmp_path, instances=True)
  dataset = _open(root)
  for i in range(3):
    semantic = _read(root / f"train/masks/im{i}.png")
    instances = _read(root / f"train/instances/im{i}.png")
    # The data covers each case: void with an instance id, things without one, things with one.
    assert (instances[semantic == 255] > 0).any()
    assert (instances[(semantic == 1) | (semantic == 2)] == 0).any()
    assert (instances[(semantic == 1) | (semantic == 2)] > 0).any()
    panoptic = dataset.source[i]["panoptic"]
    assert panoptic.dtype == np.int32
    np.testing.assert_array_equal(panoptic, _panoptic(semantic, instances))


def test_things_default_to_every_class_but_class_0(tmp_path):
  dataset = _open(_write(tmp_path, instances=True))
  assert dataset.things == (1, 2) and dataset.stuff == (0,)


def test_things_named_in_classes_json(tmp_path):
  root = _write(tmp_path, instances=True)
  classes = {"classes": ["background", "cat", "dog", "sky"], "things": ["dog", "cat"]}
  (root / "classes.json").write_text(json.dumps(classes))
  dataset = _open(root)
  assert dataset.class_names == ("background", "cat", "dog", "sky")
  assert dataset.things == (1, 2) and dataset.stuff == (0, 3)


def test_split_without_instances_has_no_panoptic_nor_things(tmp_path):
  root = _write(tmp_path)
  (root / "classes.json").write_text(
    json.dumps({"classes": ["bg", "cat", "dog"], "things": ["cat"]})
  )
  dataset = _open(root)
  assert "panoptic" not in dataset.source[0]
  assert dataset.things == () and dataset.stuff == ()


def test_unknown_thing_name_suggests_the_close_class(tmp_path):
  root = _write(tmp_path, instances=True)
  classes = {"classes": ["background", "cat", "dog"], "things": ["cat", "dgo"]}
  (root / "classes.json").write_text(json.dumps(classes))
  with pytest.raises(FolderError, match=r"classes\.json: \"things\" names 'dgo'.*'dog'\?"):
    _open(root)


def test_missing_instance_mask_names_the_image_and_the_expected_file(tmp_path):
  root = _write(tmp_path, instances=True)
  (root / "train/instances/im2.png").unlink()
  with pytest.raises(
    FolderError, match=r"im2\.jpg has no instance mask: expected .*instances/im2\.png"
  ):
    _open(root)


def test_colour_instance_mask_is_rejected(tmp_path):
  root = _write(tmp_path, instances=True)
  Image.fromarray(np.zeros((12, 10, 3), np.uint8)).save(root / "train/instances/im0.png")
  with pytest.raises(
    FolderError, match=r"instances/im0\.png has mode RGB.*single-channel.*instance ids"
  ):
    _open(root)


def test_instance_mask_size_mismatch(tmp_path):
  root = _write(tmp_path, instances=True)
  Image.fromarray(np.zeros((5, 5), np.uint8)).save(root / "train/instances/im0.png")
  with pytest.raises(FolderError, match=r"instances/im0\.png is 5x5 but .*im0\.jpg is 10x12"):
    _open(root)


def test_instance_ids_of_1000_and_more_are_rejected(tmp_path):
  root = _write(tmp_path, instances=True)
  ids = np.zeros((12, 10), np.uint16)
  ids[0, 0], ids[1, 1] = 1000, 4000
  Image.fromarray(ids).save(root / "train/instances/im1.png")
  with pytest.raises(FolderError, match=r"instances/im1\.png has instance ids \[1000, 4000\]"):
    _open(root)


def _rewrite(root, semantic, instances, name="im0"):
  Image.fromarray(semantic.astype(np.uint8)).save(root / f"train/masks/{name}.png")
  Image.fromarray(instances.astype(np.uint8)).save(root / f"train/instances/{name}.png")


def test_instance_on_two_classes_is_rejected_with_both_names(tmp_path):
  root = _write(tmp_path, instances=True)
  semantic, instances = np.full((12, 10), 255), np.full((12, 10), 7)
  semantic[0, 0], semantic[0, 1] = 1, 2
  _rewrite(root, semantic, instances)
  with pytest.raises(FolderError, match=r"instances/im0\.png: instance 7 .*\['cat', 'dog'\]"):
    _open(root)


def test_instance_on_void_and_one_class_is_accepted(tmp_path):
  root = _write(tmp_path, instances=True)
  semantic, instances = np.full((12, 10), 255), np.full((12, 10), 7)
  semantic[0, 0] = 2
  _rewrite(root, semantic, instances)
  assert _open(root).source[0]["panoptic"][0, 0] == 2007


def test_instance_on_a_stuff_class_tells_to_add_it_to_things(tmp_path):
  root = _write(tmp_path, instances=True)
  classes = {"classes": ["background", "cat", "dog", "sky"], "things": ["cat", "dog"]}
  (root / "classes.json").write_text(json.dumps(classes))
  semantic, instances = np.full((12, 10), 3), np.zeros((12, 10))
  instances[3, 4] = 9
  _rewrite(root, semantic, instances, "im1")
  pattern = r"instances/im1\.png: instance 9 lies on 'sky', a stuff class; add 'sky' to \"things\""
  with pytest.raises(FolderError, match=pattern + r" in classes\.json"):
    _open(root)


def test_16_bit_instance_ids_up_to_999(tmp_path):
  root = _write(tmp_path, n=1, instances=True)
  semantic = np.ones((12, 10), np.uint8)
  semantic[4:8], semantic[8:, :5] = 2, 255
  instances = np.zeros((12, 10), np.uint16)
  instances[:2], instances[2:4], instances[4:8], instances[8:] = 999, 256, 300, 998
  Image.fromarray(semantic).save(root / "train/masks/im0.png")
  Image.fromarray(instances).save(root / "train/instances/im0.png")
  assert Image.open(root / "train/instances/im0.png").mode == "I;16"
  panoptic = _open(root).source[0]["panoptic"]
  np.testing.assert_array_equal(panoptic, _panoptic(semantic, instances))
  assert set(np.unique(panoptic).tolist()) == {1999, 1256, 2300, 1998, 255_000}


def test_instance_task_takes_the_folder_things_and_objects(tmp_path):
  config = base_config()
  config.task = "instance"
  dataset = _open(_write(tmp_path, instances=True))
  task = TASKS["instance"](config, dataset)
  assert task.things == (1, 2) and task.class_names == ("cat", "dog")
  example = task.prepare(dataset.source[0])
  semantic = _read(tmp_path / "train/masks/im0.png")
  instances = _read(tmp_path / "train/instances/im0.png")
  objects = {
    (c, i): (semantic == c) & (instances == i)
    for c in (1, 2)
    for i in np.unique(instances[semantic == c])
    if i > 0
  }
  valid = example["gt_valid"]
  assert valid.sum() == len(objects) > 1
  found = {
    (task.things[label], int(instances[mask][0])): mask
    for label, mask in zip(example["gt_labels"][valid], example["gt_masks"][valid], strict=True)
  }
  assert found.keys() == objects.keys()
  for key, mask in objects.items():
    np.testing.assert_array_equal(found[key], mask)


@pytest.mark.parametrize("task", ["instance", "panoptic", "promptable"])
def test_tasks_on_objects_ask_a_folder_without_instances_for_them(tmp_path, task):
  config = base_config()
  config.task, config.data.name = task, "folder"
  config.model.name = {"panoptic": "panoptic_deeplab", "promptable": "sam_interactive"}.get(
    task, "mask_rcnn"
  )
  with pytest.raises(InputError, match=rf"Task '{task}' needs objects.*instances/ folder"):
    TASKS[task](config, _open(_write(tmp_path)))


def test_skipping_bad_examples_leaves_them_out_and_names_them(tmp_path, capsys):
  root = _write(tmp_path, n=4)
  (root / "train/images/im1.jpg").write_bytes(b"not a jpeg")
  mask = _read(root / "train/masks/im3.png").copy()
  mask[0, 0] = 7  # neither a class nor void
  Image.fromarray(mask).save(root / "train/masks/im3.png")
  with pytest.raises(FolderError, match=r"im1\.jpg cannot be read"):
    _open(root)
  dataset = open_dataset("folder", root, "train", on_bad_example="skip")
  assert len(dataset.source) == 2
  assert [dataset.source.example_name(i).rsplit("/", 1)[1] for i in range(2)] == [
    "im0.jpg",
    "im2.jpg",
  ]
  out = capsys.readouterr().out
  assert "Skipped 2 bad examples" in out and "im1.jpg" in out and "im3.png" in out


def test_a_split_of_only_bad_examples_is_an_error_even_when_skipping(tmp_path):
  root = _write(tmp_path, n=2)
  for i in range(2):
    (root / f"train/images/im{i}.jpg").write_bytes(b"")
  with pytest.raises(FolderError, match="Every one of the 2 examples"):
    open_dataset("folder", root, "train", on_bad_example="skip")


def test_an_empty_split_names_the_folder_and_the_file_types(tmp_path):
  root = _write(tmp_path, n=1)
  (root / "train/images/im0.jpg").unlink()
  with pytest.raises(FolderError, match=r"train/images has no images \(.*\.png"):
    _open(root)

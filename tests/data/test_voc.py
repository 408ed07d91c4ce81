"""Pascal VOC 2012 and VOC aug (VOC + SBD) from the official layouts: splits, labels, errors."""

import pathlib

import numpy as np
import pytest
import scipy.io
from fake_voc import write_sbd_mat, write_voc
from PIL import Image

from segjax.config import base_config
from segjax.data.builders import voc
from segjax.data.builders.voc import VocError

# Written out by hand from the fake's description (not from its or the reader's code).
VOC_LABEL = (np.arange(48) % 21).reshape(6, 8)
VOC_LABEL[-1] = 255
SBD_LABEL = np.array([[2] * 8, [5] * 8, [8] * 8, [11] * 8, [14] * 8, [17] * 8])


def _config(root, **data):
  config = base_config()
  config.data.root = str(root)
  config.data.update(data)
  return config.data


def _names(dataset):
  return [pathlib.Path(dataset.source.example_name(i)).stem for i in range(len(dataset.source))]


def test_voc_splits_read_the_lists_and_palette_indices_with_void_kept(tmp_path):
  root = write_voc(tmp_path)
  train = voc.load(_config(root), "train")
  assert _names(train) == ["a", "b"]
  assert _names(voc.load(_config(root), "validation")) == ["c"]
  example = train.source[0]
  assert example["image"].shape == (6, 8, 3) and example["image"].dtype == np.uint8
  assert example["semantic"].dtype == np.uint8
  np.testing.assert_array_equal(example["semantic"], VOC_LABEL)
  assert train.source.image_file(1) == root / "VOCdevkit/VOC2012/JPEGImages/b.jpg"
  assert train.things == () and train.stuff == () and train.cache_dir == str(root)


def test_classes_and_the_devkit_colour_map(tmp_path):
  dataset = voc.load(_config(write_voc(tmp_path)), "train")
  assert dataset.num_classes == 21
  assert dataset.class_names[:3] == ("background", "aeroplane", "bicycle")
  assert dataset.class_names[15] == "person" and dataset.class_names[20] == "tvmonitor"
  colors = dataset.colors
  assert colors[0] == (0, 0, 0) and colors[1] == (128, 0, 0) and colors[2] == (0, 128, 0)
  assert colors[3] == (128, 128, 0) and colors[15] == (192, 128, 128)
  assert colors[20] == (0, 64, 128)
  assert voc.color_map()[255] == (224, 224, 192)  # the void colour of VOC's PNGs


def test_aug_train_is_voc_and_sbd_less_voc_val_with_voc_labels_first(tmp_path):
  # VOC train {a, b}, VOC val {c}, SBD train {b, d, c}, SBD val {e}.
  root = write_voc(tmp_path)
  train = voc.load_aug(_config(root), "train")
  assert _names(train) == ["a", "b", "d", "e"]
  assert _names(voc.load_aug(_config(root), "validation")) == ["c"]
  np.testing.assert_array_equal(train.source[1]["semantic"], VOC_LABEL)  # b: VOC and SBD
  np.testing.assert_array_equal(train.source[2]["semantic"], SBD_LABEL)  # d: SBD only
  np.testing.assert_array_equal(train.source[3]["semantic"], SBD_LABEL)  # e: SBD val
  assert train.source[2]["semantic"].dtype == np.uint8
  assert train.source.image_file(2) == root / "VOCdevkit/VOC2012/JPEGImages/d.jpg"


def test_missing_archives_and_files_name_what_to_unpack(tmp_path):
  with pytest.raises(VocError, match=r"VOCdevkit/VOC2012 is missing.*VOCtrainval_11-May-2012\.tar"):
    voc.load(_config(tmp_path), "train")
  root = write_voc(tmp_path / "no_sbd", sbd_train=None)
  assert len(voc.load_aug(_config(root), "validation").source) == 1
  with pytest.raises(VocError, match=r"benchmark_RELEASE/dataset is missing.*SBD's benchmark\.tgz"):
    voc.load_aug(_config(root), "train")
  root = write_voc(tmp_path / "no_voc_jpeg")
  (root / "VOCdevkit/VOC2012/JPEGImages/a.jpg").unlink()
  with pytest.raises(
    VocError, match=r"JPEGImages/a\.jpg is missing, listed in .*Segmentation/train"
  ):
    voc.load(_config(root), "train")
  root = write_voc(tmp_path / "no_sbd_jpeg")
  (root / "VOCdevkit/VOC2012/JPEGImages/e.jpg").unlink()
  with pytest.raises(VocError, match=r"JPEGImages/e\.jpg is missing, listed in .*dataset/val\.txt"):
    voc.load_aug(_config(root), "train")
  root = write_voc(tmp_path / "no_label")
  (root / "benchmark_RELEASE/dataset/cls/d.mat").unlink()
  with pytest.raises(VocError, match=r"^d, listed in .*dataset/train\.txt, has neither .*d\.png"):
    voc.load_aug(_config(root), "train")


def test_bad_config_is_refused(tmp_path):
  with pytest.raises(VocError, match=r"config\.data\.root is empty"):
    voc.load(_config(""), "train")
  with pytest.raises(VocError, match=r"is not a folder"):
    voc.load(_config(tmp_path / "nowhere"), "train")
  with pytest.raises(VocError, match=r"ignore_index=0: VOC marks void with 255"):
    voc.load(_config(tmp_path, ignore_index=0), "train")
  with pytest.raises(VocError, match=r"split 'test'"):
    voc.load_aug(_config(tmp_path), "test")


def test_rgb_label_png_is_refused(tmp_path):
  root = write_voc(tmp_path)
  path = root / "VOCdevkit/VOC2012/SegmentationClass/a.png"
  with Image.open(path) as label:
    label.convert("RGB").save(path)
  dataset = voc.load(_config(root), "train")
  with pytest.raises(VocError, match=r"a\.png has mode RGB: .*not the colour rendering"):
    dataset.source[0]


def test_bad_mat_files_and_sizes_name_the_files(tmp_path):
  root = write_voc(tmp_path)
  cls = root / "benchmark_RELEASE/dataset/cls"
  (cls / "d.mat").write_bytes(b"not a MATLAB file")
  scipy.io.savemat(cls / "e.mat", {"GTinst": {"Segmentation": SBD_LABEL.astype(np.uint8)}})
  source = voc.load_aug(_config(root), "train").source
  with pytest.raises(VocError, match=r"d\.mat cannot be read as a MATLAB file"):
    source[2]
  with pytest.raises(VocError, match=r"e\.mat has no GTcls\.Segmentation \(it has \['GTinst'\]\)"):
    source[3]
  write_sbd_mat(cls / "e.mat", np.zeros((5, 8), np.uint8))
  with pytest.raises(VocError, match=r"e\.mat is 8x5 but .*JPEGImages/e\.jpg is 8x6"):
    source[3]

"""Joint transforms: labels move with the image, are never interpolated, and void fills the gaps."""

import numpy as np
import pytest
from scipy import ndimage

from segjax.data import transforms


def _example(h=40, w=64, seed=0, cell=8):
  rng = np.random.default_rng(seed)
  # Blocky labels: each cell one class, the image colour a function of the class, so any
  # misalignment between image and labels shows up as a colour/label mismatch.
  cells = rng.integers(0, 5, (h // cell, w // cell))
  semantic = np.kron(cells, np.ones((cell, cell), np.int64)).astype(np.uint8)
  image = np.stack([semantic * 50, 255 - semantic * 50, semantic * 20], -1).astype(np.uint8)
  panoptic = semantic.astype(np.int32) * 1000 + 1
  return {"image": image, "semantic": semantic, "panoptic": panoptic, "name": "kept"}


def test_resize_labels_is_nearest_at_pixel_centres():
  labels = np.array([[0, 1], [2, 3]], np.uint8)
  # 2 -> 4: each source pixel covers a 2x2 block.
  np.testing.assert_array_equal(
    transforms.resize({"image": np.zeros((2, 2, 3), np.uint8), "semantic": labels}, (4, 4))[
      "semantic"
    ],
    [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]],
  )


@pytest.mark.parametrize("seed", range(6))
def test_random_scale_crop_flip_keeps_image_and_labels_aligned(seed):
  example = _example(seed=seed)
  out = transforms.random_scale_crop_flip(
    example,
    np.random.default_rng(seed),
    size_hw=(32, 48),
    scale_range=(0.8, 2.0),
    hflip=True,
    ignore_index=255,
  )
  assert out["image"].shape == (32, 48, 3) and out["semantic"].shape == (32, 48)
  assert out["name"] == "kept"
  labels = out["semantic"]
  # No new label values: nearest sampling only (255 where the window left the image).
  assert set(np.unique(labels)) <= set(np.unique(example["semantic"])) | {255}
  np.testing.assert_array_equal(out["panoptic"] // 1000, labels)
  # Away from class edges (PIL's bilinear filter blends across up to 2 pixels when it shrinks),
  # the colour still encodes the label.
  # Pixels near the crop's edge are left out too: their bilinear support reaches past it.
  window = {"size": 5, "mode": "constant", "cval": 254}
  inner = ndimage.maximum_filter(labels, **window) == ndimage.minimum_filter(labels, **window)
  inner &= labels != 255
  red = out["image"][..., 0].astype(int)
  assert inner.any()
  assert np.all(np.abs(red[inner] - labels[inner].astype(int) * 50) <= 2)


def test_crop_window_outside_the_image_is_void():
  example = _example(h=16, w=16)
  out = transforms.random_scale_crop_flip(
    example,
    np.random.default_rng(0),
    size_hw=(40, 40),
    scale_range=(0.25, 0.25),  # the image shrinks to a quarter of the window
    hflip=False,
    ignore_index=255,
  )
  assert (out["semantic"] == 255).mean() > 0.8
  assert np.all(out["panoptic"][out["semantic"] == 255] == 255_000)
  assert np.all(out["image"][out["semantic"] == 255] == 0)


def test_flip_mirrors_image_and_labels_together():
  example = _example()
  flipped_once = None
  for seed in range(20):  # find a draw that flips and one that does not, at scale 1
    out = transforms.random_scale_crop_flip(
      example,
      np.random.default_rng(seed),
      size_hw=(40, 64),
      scale_range=(1.0, 1.0),
      hflip=True,
      ignore_index=255,
    )
    if np.array_equal(out["semantic"], example["semantic"][:, ::-1]):
      np.testing.assert_array_equal(out["image"], example["image"][:, ::-1])
      flipped_once = True
  assert flipped_once


def test_an_image_smaller_than_the_crop_is_scaled_up_to_fill_it():
  rng = np.random.default_rng(0)
  example = {
    "image": rng.integers(0, 255, (5, 7, 3), dtype=np.uint8),
    "semantic": rng.integers(0, 3, (5, 7), dtype=np.uint8),
  }
  out = transforms.random_scale_crop_flip(
    example, rng, size_hw=(32, 48), scale_range=(1.0, 1.0), hflip=False, ignore_index=255
  )
  assert out["image"].shape == (32, 48, 3) and out["semantic"].shape == (32, 48)
  # Scale 1 fits the image's larger ratio (48/7) to the window: nothing is left void.
  assert not (out["semantic"] == 255).any()


@pytest.mark.parametrize(
  ("hw", "size_hw", "expected"),
  [((4, 8), (8, 8), (4, 8)), ((6, 3), (4, 4), (4, 2)), ((100, 50), (30, 40), (30, 15))],
)
def test_fit_size_keeps_the_aspect_ratio_inside_the_box(hw, size_hw, expected):
  assert transforms.fit_size(hw, size_hw) == expected


def test_resize_and_pad_scales_to_fit_and_pads_with_void():
  # A 2x4 image into 4x4: the width limits the scale to 1, so rows 2-3 are padding.
  semantic = np.array([[0, 1, 2, 3], [4, 5, 6, 7]], np.uint8)
  example = {
    "image": np.full((2, 4, 3), 9, np.uint8),
    "semantic": semantic,
    "panoptic": semantic.astype(np.int32) * 1000 + 1,
  }
  out = transforms.resize_and_pad(example, (4, 4), ignore_index=255)
  np.testing.assert_array_equal(out["semantic"][:2], semantic)
  np.testing.assert_array_equal(out["semantic"][2:], 255)
  np.testing.assert_array_equal(out["panoptic"][2:], 255_000)
  np.testing.assert_array_equal(out["panoptic"][:2], example["panoptic"])
  assert (out["image"][:2] == 9).all() and (out["image"][2:] == 0).all()
  # 2x2 into 4x8: scaled 2x to 4x4 (height limits), columns 4-7 padding; nearest labels.
  small = {"image": np.zeros((2, 2, 3), np.uint8), "semantic": np.array([[1, 2], [3, 4]], np.uint8)}
  out = transforms.resize_and_pad(small, (4, 8), ignore_index=255)["semantic"]
  np.testing.assert_array_equal(
    out,
    [[1, 1, 2, 2, 255, 255, 255, 255]] * 2 + [[3, 3, 4, 4, 255, 255, 255, 255]] * 2,
  )

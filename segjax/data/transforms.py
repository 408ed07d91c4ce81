"""Joint image/label transforms on the host, in numpy: labels are resampled nearest, never blended.

Label maps are the example's `semantic` (u8) and `panoptic` (i32) fields; any other field passes
through untouched.
"""

import numpy as np
from PIL import Image

LABEL_FIELDS = ("semantic", "panoptic")


def _resize_image(image: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
  if image.shape[:2] == tuple(size_hw):
    return image
  return np.asarray(Image.fromarray(image).resize(size_hw[::-1], Image.Resampling.BILINEAR))


def resize_labels(labels: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
  if labels.shape[:2] == tuple(size_hw):
    return labels
  # Index arithmetic rather than PIL: exact nearest sampling at pixel centres for any dtype.
  h, w = labels.shape
  rows = np.minimum(((np.arange(size_hw[0]) + 0.5) * h / size_hw[0]).astype(np.int64), h - 1)
  cols = np.minimum(((np.arange(size_hw[1]) + 0.5) * w / size_hw[1]).astype(np.int64), w - 1)
  return labels[rows[:, None], cols[None, :]]


def _void_value(field: str, ignore_index: int, label_divisor: int) -> int:
  return ignore_index * label_divisor if field == "panoptic" else ignore_index


def resize(example: dict, size_hw: tuple[int, int]) -> dict:
  """Resizes image (bilinear) and label maps (nearest) to `size_hw`."""
  out = dict(example)
  out["image"] = _resize_image(example["image"], size_hw)
  for field in LABEL_FIELDS:
    if field in example:
      out[field] = resize_labels(example[field], size_hw)
  return out


def fit_size(hw: tuple[int, int], size_hw: tuple[int, int]) -> tuple[int, int]:
  """The largest (H, W) of aspect ratio `hw` that fits inside `size_hw`."""
  scale = min(size_hw[0] / hw[0], size_hw[1] / hw[1])
  return (
    min(size_hw[0], max(1, round(hw[0] * scale))),
    min(size_hw[1], max(1, round(hw[1] * scale))),
  )


def resize_and_pad(
  example: dict, size_hw: tuple[int, int], *, ignore_index: int, label_divisor: int = 1000
) -> dict:
  """Scales the image to fit inside `size_hw` keeping its aspect ratio (`fit_size`), then pads
  bottom and right to `size_hw`: image 0, labels void, so padding counts in no loss or metric."""
  fitted = fit_size(example["image"].shape[:2], size_hw)
  scaled = resize(example, fitted)
  out = dict(example)
  for field in ("image", *LABEL_FIELDS):
    if field in example:
      array = scaled[field]
      fill = 0 if field == "image" else _void_value(field, ignore_index, label_divisor)
      padded = np.full((*size_hw, *array.shape[2:]), fill, array.dtype)
      padded[: fitted[0], : fitted[1]] = array
      out[field] = padded
  return out


def random_scale_crop_flip(
  example: dict,
  rng: np.random.Generator,
  *,
  size_hw: tuple[int, int],
  scale_range: tuple[float, float],
  hflip: bool,
  ignore_index: int,
  label_divisor: int = 1000,
) -> dict:
  """Rescales by a random factor, crops a random `size_hw` window and maybe flips it.

  The scale multiplies the factor that would resize the image to `size_hw`, so scale 1 sees the
  whole image. Where the window falls outside the image, the image is 0 and labels are void.
  """
  h, w = example["image"].shape[:2]
  scale = rng.uniform(*scale_range) * max(size_hw[0] / h, size_hw[1] / w)
  scaled_hw = (max(1, round(h * scale)), max(1, round(w * scale)))
  scaled = resize(example, scaled_hw)
  top = int(rng.integers(min(0, scaled_hw[0] - size_hw[0]), max(0, scaled_hw[0] - size_hw[0]) + 1))
  left = int(rng.integers(min(0, scaled_hw[1] - size_hw[1]), max(0, scaled_hw[1] - size_hw[1]) + 1))
  flip = hflip and rng.random() < 0.5
  out = dict(example)
  for field in ("image", *LABEL_FIELDS):
    if field not in example:
      continue
    array = scaled[field]
    fill = 0 if field == "image" else _void_value(field, ignore_index, label_divisor)
    window = np.full((*size_hw, *array.shape[2:]), fill, array.dtype)
    # Intersection of the crop window with the scaled image, in both coordinate frames.
    src_t, src_l = max(top, 0), max(left, 0)
    src_b, src_r = min(top + size_hw[0], scaled_hw[0]), min(left + size_hw[1], scaled_hw[1])
    window[src_t - top : src_b - top, src_l - left : src_r - left] = array[src_t:src_b, src_l:src_r]
    out[field] = window[:, ::-1].copy() if flip else window
  return out

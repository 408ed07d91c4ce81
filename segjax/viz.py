"""Colours for class maps and the overlays that the loop, `predict` and notebooks draw."""

import numpy as np

VOID_COLOUR = (0, 0, 0)


def palette(num_classes: int) -> np.ndarray:
  """A fixed, distinguishable colour per class (PASCAL VOC's bit-interleaved scheme).

  Returns:
    u8[256,3]; entries past `num_classes` continue the scheme, entry 255 (void) is black.
  """
  del num_classes  # the scheme is the same for every class count, so colours stay stable
  ids = np.arange(256)
  colours = np.zeros((256, 3), np.int64)
  for bit in range(8):
    for channel in range(3):
      colours[:, channel] |= ((ids >> (3 * bit + channel)) & 1) << (7 - bit)
  colours[255] = VOID_COLOUR
  return colours.astype(np.uint8)


def colorize(labels: np.ndarray, num_classes: int) -> np.ndarray:
  """Class map -> colour image.

  Args:
    labels: int[H,W] class ids; values of 255 and above are drawn as void.
  Returns:
    u8[H,W,3].
  """
  return palette(num_classes)[np.clip(labels, 0, 255)]


def overlay(image: np.ndarray, labels: np.ndarray, num_classes: int, *, alpha: float = 0.5):
  """Blends the colour-coded `labels: int[H,W]` over `image: u8[H,W,3]`; void stays the image."""
  colours = colorize(labels, num_classes).astype(np.float32)
  blended = (1 - alpha) * image.astype(np.float32) + alpha * colours
  keep = (labels >= 255)[..., None]
  return np.where(keep, image, blended).round().astype(np.uint8)


def error_map(pred: np.ndarray, labels: np.ndarray, *, ignore_index: int = 255) -> np.ndarray:
  """u8[H,W,3]: green where `pred` equals `labels`, red where it does not, grey on void."""
  out = np.where((pred == labels)[..., None], [40, 170, 60], [220, 40, 40])
  out = np.where((labels == ignore_index)[..., None], [128, 128, 128], out)
  return out.astype(np.uint8)


def comparison_row(image, labels, pred, num_classes: int, *, ignore_index: int = 255):
  """One strip: image | truth overlay | prediction overlay | errors, u8[H,4W+6,3]."""
  gap = np.full((image.shape[0], 2, 3), 255, np.uint8)
  labels_drawn = np.where(labels == ignore_index, 255, labels)
  panels = [
    image,
    overlay(image, labels_drawn, num_classes),
    overlay(image, pred, num_classes),
    error_map(pred, labels, ignore_index=ignore_index),
  ]
  strip = [panels[0]]
  for panel in panels[1:]:
    strip += [gap, panel]
  return np.concatenate(strip, axis=1)

"""segjax.ops.masks against NumPy loops and torch's `grid_sample`, the op detectron2 pastes with."""

import jax
import numpy as np
import pytest

from segjax.ops.masks import paste_masks, paste_masks_soft

ATOL = 1e-5
HEIGHT, WIDTH, CELLS = 20, 24, 7

paste_jit = jax.jit(paste_masks, static_argnames=("height", "width", "threshold"))
paste_soft_jit = jax.jit(paste_masks_soft, static_argnames=("height", "width"))


# ----------------------------------------------------------------------------- references


def ref_grid_sample(mask, gx, gy):
  """`F.grid_sample(mode="bilinear", padding_mode="zeros", align_corners=False)` at one point."""
  cells_y, cells_x = mask.shape
  u = ((gx + 1) * cells_x - 1) / 2
  v = ((gy + 1) * cells_y - 1) / 2
  x0, y0 = int(np.floor(u)), int(np.floor(v))
  value = 0.0
  for y, wy in ((y0, y0 + 1 - v), (y0 + 1, v - y0)):
    for x, wx in ((x0, x0 + 1 - u), (x0 + 1, u - x0)):
      if 0 <= y < cells_y and 0 <= x < cells_x:
        value += wy * wx * mask[y, x]
  return value


def ref_paste_soft(masks, boxes, height, width):
  """detectron2's `_do_paste_mask` pixel by pixel: each pixel centre, normalised across its box."""
  pasted = np.zeros((len(masks), height, width))
  for r, (mask, (x0, y0, x1, y1)) in enumerate(zip(masks, boxes.astype(np.float64), strict=True)):
    for y in range(height):
      gy = (y + 0.5 - y0) / (y1 - y0) * 2 - 1
      for x in range(width):
        gx = (x + 0.5 - x0) / (x1 - x0) * 2 - 1
        pasted[r, y, x] = ref_grid_sample(mask.astype(np.float64), gx, gy)
  return pasted


def torch_paste(masks, boxes, height, width, *, skip_empty):
  """detectron2's `_do_paste_mask` (float32 torch), pasted into a full image.

  `skip_empty=True` is its CPU path: only the window around all the boxes is sampled.
  """
  torch = pytest.importorskip("torch")
  masks, boxes = torch.from_numpy(masks)[:, None], torch.from_numpy(boxes)
  if skip_empty:
    x0_int, y0_int = torch.clamp(boxes.min(dim=0).values.floor()[:2] - 1, min=0).to(torch.int32)
    x1_int = torch.clamp(boxes[:, 2].max().ceil() + 1, max=width).to(torch.int32)
    y1_int = torch.clamp(boxes[:, 3].max().ceil() + 1, max=height).to(torch.int32)
  else:
    x0_int, y0_int, x1_int, y1_int = 0, 0, width, height
  x0, y0, x1, y1 = torch.split(boxes, 1, dim=1)
  img_y = torch.arange(y0_int, y1_int, dtype=torch.float32) + 0.5
  img_x = torch.arange(x0_int, x1_int, dtype=torch.float32) + 0.5
  img_y = (img_y - y0) / (y1 - y0) * 2 - 1
  img_x = (img_x - x0) / (x1 - x0) * 2 - 1
  n = masks.shape[0]
  gx = img_x[:, None, :].expand(n, img_y.size(1), img_x.size(1))
  gy = img_y[:, :, None].expand(n, img_y.size(1), img_x.size(1))
  grid = torch.stack([gx, gy], dim=3)
  window = torch.nn.functional.grid_sample(masks, grid, align_corners=False)[:, 0]
  pasted = torch.zeros((n, height, width))
  pasted[:, y0_int:y1_int, x0_int:x1_int] = window
  return pasted.numpy()


def random_case(seed, count=8):
  """Mask probabilities and boxes over (and past) a HEIGHT×WIDTH image, some under a pixel."""
  rng = np.random.default_rng(seed)
  masks = rng.uniform(0, 1, (count, CELLS, CELLS)).astype(np.float32)
  x0 = rng.uniform(-8, WIDTH, count)
  y0 = rng.uniform(-8, HEIGHT, count)
  w = np.where(np.arange(count) % 4 == 0, rng.uniform(0.2, 1.0, count), rng.uniform(2, 16, count))
  h = rng.uniform(0.5, 14, count)
  return masks, np.stack([x0, y0, x0 + w, y0 + h], 1).astype(np.float32)


def pixels(rows, cols, height, width):
  """bool[height,width] that is True on the given row and column ranges."""
  out = np.zeros((height, width), bool)
  out[rows, cols] = True
  return out


# ----------------------------------------------------------------------------- soft


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_soft_matches_numpy_and_torch(seed):
  masks, boxes = random_case(seed)
  got = paste_soft_jit(masks, boxes, height=HEIGHT, width=WIDTH)
  assert got.shape == (len(masks), HEIGHT, WIDTH)
  np.testing.assert_allclose(got, ref_paste_soft(masks, boxes, HEIGHT, WIDTH), atol=ATOL)
  torch_soft = torch_paste(masks, boxes, HEIGHT, WIDTH, skip_empty=False)
  np.testing.assert_allclose(got, torch_soft, atol=ATOL)


def test_box_on_the_mask_grid_is_the_identity():
  # Box (0, 0, 4, 4) in a 4x4 image: pixel centre x + 0.5 lands on mask cell x exactly.
  masks = np.random.default_rng(3).uniform(0, 1, (1, 4, 4)).astype(np.float32)
  boxes = np.array([[0.0, 0.0, 4.0, 4.0]], np.float32)
  np.testing.assert_array_equal(paste_masks_soft(masks, boxes, height=4, width=4), masks)


def test_empty_boxes_paste_nothing():
  # detectron2 gets NaN here (division by a zero width), which fails every threshold.
  masks = np.ones((2, CELLS, CELLS), np.float32)
  boxes = np.array([[5.0, 2.0, 5.0, 9.0], [3.0, 4.0, 8.0, 4.0]], np.float32)
  soft = paste_soft_jit(masks, boxes, height=HEIGHT, width=WIDTH)
  np.testing.assert_array_equal(soft, np.zeros_like(soft))
  assert not paste_jit(masks, boxes, height=HEIGHT, width=WIDTH).any()


# ----------------------------------------------------------------------------- thresholded


def test_all_ones_fills_exactly_an_integer_box():
  # Box (2, 3, 7, 9), 4x4 mask: the first column inside (x = 2) samples u = -0.1, value 0.9; the
  # last outside (x = 1) u = -0.9, value 0.1. So exactly columns 2..6 and rows 3..8.
  box = np.array([[2.0, 3.0, 7.0, 9.0]], np.float32)
  got = paste_masks(np.ones((1, 4, 4), np.float32), box, height=12, width=10)
  np.testing.assert_array_equal(got[0], pixels(slice(3, 9), slice(2, 7), 12, 10))


def test_box_partly_outside_the_image():
  boxes = np.array([[-3.0, -2.0, 5.0, 4.0], [6.0, 5.0, 13.0, 11.0], [-9.0, 1.0, -2.0, 6.0]])
  got = paste_masks(np.ones((3, CELLS, CELLS), np.float32), boxes, height=8, width=10)
  np.testing.assert_array_equal(got[0], pixels(slice(0, 4), slice(0, 5), 8, 10))
  np.testing.assert_array_equal(got[1], pixels(slice(5, 8), slice(6, 10), 8, 10))
  assert not got[2].any()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_thresholded_matches_detectron2_cpu_and_gpu_paths(seed):
  masks, boxes = random_case(seed)
  got = np.asarray(paste_jit(masks, boxes, height=HEIGHT, width=WIDTH))
  for skip_empty in (False, True):
    want = torch_paste(masks, boxes, HEIGHT, WIDTH, skip_empty=skip_empty)
    clear = np.abs(want - 0.5) > 1e-5  # away from float32 ties with the threshold
    np.testing.assert_array_equal(got[clear], want[clear] >= 0.5)


def test_threshold_is_inclusive():
  # On the identity box the pasted values are the mask's, so `>=` decides the ties.
  masks = np.array([[[0.5, 0.3], [0.7, np.nextafter(np.float32(0.5), np.float32(0))]]], np.float32)
  boxes = np.array([[0.0, 0.0, 2.0, 2.0]], np.float32)
  np.testing.assert_array_equal(
    paste_masks(masks, boxes, height=2, width=2), [[[True, False], [True, False]]]
  )
  np.testing.assert_array_equal(
    paste_masks(masks, boxes, height=2, width=2, threshold=0.7), [[[False, False], [True, False]]]
  )
  np.testing.assert_array_equal(
    paste_masks(masks, boxes, height=2, width=2, threshold=0.2), [[[True, True], [True, True]]]
  )

"""segjax.ops.anchors against hand-worked anchors and a loop over cells."""

import math

import numpy as np
import pytest

from segjax.ops.anchors import anchors_for_level, generate_anchors


def ref_level(size, stride, feature_hw, ratios, offset):
  out = []
  for y in range(feature_hw[0]):
    for x in range(feature_hw[1]):
      cx, cy = (x + offset) * stride, (y + offset) * stride
      for ratio in ratios:
        w = math.sqrt(size * size / ratio)
        h = ratio * w
        out.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
  return np.array(out)


def test_counts_and_first_anchors_of_p2_by_hand():
  levels = generate_anchors((64, 64))
  assert [len(a) for a in levels] == [16 * 16 * 3, 8 * 8 * 3, 4 * 4 * 3, 2 * 2 * 3, 1 * 1 * 3]
  assert all(a.dtype == np.float32 for a in levels)
  p2 = levels[0]
  r = math.sqrt(2) * 16  # ratio 0.5: w = sqrt(32² / 0.5) = 45.25, h = 22.63
  np.testing.assert_allclose(
    p2[:4],
    [
      [-r, -r / 2, r, r / 2],  # cell (0, 0), ratio 0.5
      [-16, -16, 16, 16],  # ratio 1
      [-r / 2, -r, r / 2, r],  # ratio 2
      [4 - r, -r / 2, 4 + r, r / 2],  # cell (0, 1): x shifted by the stride
    ],
    rtol=1e-6,
  )
  np.testing.assert_allclose(p2[16 * 3 + 1], [-16, -12, 16, 20])  # cell (1, 0), ratio 1
  np.testing.assert_allclose(levels[4], ref_level(512, 64, (1, 1), (0.5, 1, 2), 0.0), rtol=1e-6)


@pytest.mark.parametrize("offset", [0.0, 0.5])
def test_levels_match_reference(offset):
  strides, sizes = (4, 8, 16, 32, 64), (32, 64, 128, 256, 512)
  levels = generate_anchors((100, 150), strides=strides, sizes=sizes, offset=offset)
  for anchors, stride, size in zip(levels, strides, sizes, strict=True):
    hw = (math.ceil(100 / stride), math.ceil(150 / stride))
    np.testing.assert_allclose(
      anchors, ref_level(size, stride, hw, (0.5, 1.0, 2.0), offset), rtol=1e-6, atol=1e-4
    )
  assert len(levels[-1]) == 2 * 3 * 3  # ceil(100/64) x ceil(150/64) cells


def test_single_level_custom_ratios():
  anchors = anchors_for_level(24, 8, (3, 5), ratios=(0.25, 1.0, 4.0, 2.0), offset=0.5)
  assert anchors.shape == (3 * 5 * 4, 4)
  want = ref_level(24, 8, (3, 5), (0.25, 1.0, 4.0, 2.0), 0.5)
  np.testing.assert_allclose(anchors, want, rtol=1e-6, atol=1e-5)
  widths, heights = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
  np.testing.assert_allclose(widths * heights, 24 * 24, rtol=1e-5)


def test_mismatched_sizes_rejected():
  with pytest.raises(ValueError, match="one size per stride"):
    generate_anchors((64, 64), strides=(4, 8), sizes=(32,))

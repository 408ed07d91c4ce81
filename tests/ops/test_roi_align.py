"""segjax.ops.roi_align against a loop-for-loop NumPy port of torchvision's CPU RoIAlign kernel."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from segjax.ops.roi_align import assign_levels, multilevel_roi_align, roi_align

ATOL = 1e-5
HEIGHT, WIDTH, CHANNELS = 12, 10, 3
STRIDES = (4, 8, 16, 32)

roi_align_jit = jax.jit(
  roi_align, static_argnames=("output_size", "spatial_scale", "sampling_ratio", "aligned")
)
multilevel_jit = jax.jit(multilevel_roi_align, static_argnames=("output_size",))


# ----------------------------------------------------------------------------- NumPy reference


def ref_roi_align_map(height, width, boxes, out_h, out_w, scale, ratio, aligned):
  """torchvision's `roi_align_forward_kernel_impl` as a linear map A f64[R,out_h,out_w,H,W].

  The pooled features are `einsum("rhwyx,yxc->rhwc", A, features)`; the gradient of
  `sum(pooled · g)` with respect to the features is `einsum("rhwyx,rhwc->yxc", A, g)`.
  """
  pooled = np.zeros((len(boxes), out_h, out_w, height, width))
  offset = 0.5 if aligned else 0.0
  count = ratio * ratio
  for r, (bx1, by1, bx2, by2) in enumerate(np.asarray(boxes, np.float64)):
    start_w, start_h = bx1 * scale - offset, by1 * scale - offset
    roi_w, roi_h = bx2 * scale - offset - start_w, by2 * scale - offset - start_h
    if not aligned:
      roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
    bin_h, bin_w = roi_h / out_h, roi_w / out_w
    for ph in range(out_h):
      for pw in range(out_w):
        for iy in range(ratio):
          y = start_h + ph * bin_h + (iy + 0.5) * bin_h / ratio
          for ix in range(ratio):
            x = start_w + pw * bin_w + (ix + 0.5) * bin_w / ratio
            if y < -1.0 or y > height or x < -1.0 or x > width:
              continue
            yc, xc = max(y, 0.0), max(x, 0.0)
            y_low, x_low = int(yc), int(xc)
            if y_low >= height - 1:
              y_high = y_low = height - 1
              yc = float(y_low)
            else:
              y_high = y_low + 1
            if x_low >= width - 1:
              x_high = x_low = width - 1
              xc = float(x_low)
            else:
              x_high = x_low + 1
            ly, lx = yc - y_low, xc - x_low
            hy, hx = 1.0 - ly, 1.0 - lx
            for py, px, w in (
              (y_low, x_low, hy * hx),
              (y_low, x_high, hy * lx),
              (y_high, x_low, ly * hx),
              (y_high, x_high, ly * lx),
            ):
              pooled[r, ph, pw, py, px] += w / count
  return pooled


def ref_roi_align(features, boxes, **kwargs):
  height, width, _ = features.shape
  linear = ref_roi_align_map(height, width, boxes, **kwargs)
  return np.einsum("rhwyx,yxc->rhwc", linear, np.asarray(features, np.float64))


def random_boxes(seed, scale, count=12):
  """Boxes over (and past) an image of HEIGHT/scale × WIDTH/scale pixels, plus awkward ones."""
  rng = np.random.default_rng(seed)
  img_h, img_w = HEIGHT / scale, WIDTH / scale
  x1 = rng.uniform(-0.3, 1.1, count) * img_w
  y1 = rng.uniform(-0.3, 1.1, count) * img_h
  w = rng.uniform(0.05, 0.8, count) * img_w
  h = rng.uniform(0.05, 0.8, count) * img_h
  pixel = 1 / scale  # one feature-map pixel, in image pixels
  awkward = [
    [3.2, 4.1, 3.9, 4.5],  # under one image pixel
    [2 * pixel, 3 * pixel, 2.4 * pixel, 3.7 * pixel],  # under one feature pixel
    [5 * pixel, 2 * pixel, 5 * pixel, 8 * pixel],  # zero width
    [-2 * pixel, 6 * pixel, 4 * pixel, 6 * pixel],  # zero height, partly left of the map
    [7 * pixel, 8 * pixel, 3 * pixel, 2 * pixel],  # reversed
    [-9 * pixel, -7 * pixel, -4 * pixel, -3 * pixel],  # outside the map
    [-0.8 * pixel, -0.5 * pixel, (WIDTH + 0.7) * pixel, (HEIGHT + 0.9) * pixel],  # just past it
  ]
  return np.concatenate([np.stack([x1, y1, x1 + w, y1 + h], 1), awkward]).astype(np.float32)


def random_features(seed, shape=(HEIGHT, WIDTH, CHANNELS)):
  return np.random.default_rng(seed + 100).standard_normal(shape).astype(np.float32)


# ----------------------------------------------------------------------------- roi_align


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("scale", [1 / 4, 1 / 16])
def test_matches_torchvision_kernel(aligned, scale):
  for seed in range(3):
    features, boxes = random_features(seed), random_boxes(seed, scale)
    kwargs = dict(out_h=7, out_w=5, scale=scale, ratio=2, aligned=aligned)
    got = roi_align_jit(
      features, boxes, output_size=(7, 5), spatial_scale=scale, sampling_ratio=2, aligned=aligned
    )
    assert got.shape == (len(boxes), 7, 5, CHANNELS) and got.dtype == jnp.float32
    np.testing.assert_allclose(got, ref_roi_align(features, boxes, **kwargs), atol=ATOL)


@pytest.mark.parametrize("ratio, output_size", [(1, 3), (3, (2, 4))])
def test_other_grids_and_sizes(ratio, output_size):
  out_h, out_w = (output_size, output_size) if isinstance(output_size, int) else output_size
  features, boxes = random_features(3), random_boxes(3, 1 / 4)
  got = roi_align_jit(
    features, boxes, output_size=output_size, spatial_scale=1 / 4, sampling_ratio=ratio
  )
  want = ref_roi_align(
    features, boxes, out_h=out_h, out_w=out_w, scale=1 / 4, ratio=ratio, aligned=True
  )
  np.testing.assert_allclose(got, want, atol=ATOL)


def test_samples_on_integer_coordinates():
  # At scale 1/4 (aligned) a box from 4k to 4k ± 24 spans feature pixels k - 0.5 to k - 0.5 ± 6:
  # 2 bins of ±3 with 3 samples each put every sample on an integer, where taps and weights taken
  # from floor() in different XLA fusions can disagree (a gather-based version failed on the
  # reversed boxes). The samples avoid the -1 and H/W borders, where the kernel is discontinuous.
  def corners(indices):
    return np.array([[4 * i, 4 * j] for i in indices for j in indices], np.float32)

  forward, reversed_ = corners(range(5)), corners(range(6, 9))
  boxes = np.concatenate([np.c_[forward, forward + 24.0], np.c_[reversed_, reversed_ - 24.0]])
  features = random_features(6)
  got = roi_align_jit(features, boxes, output_size=2, spatial_scale=1 / 4, sampling_ratio=3)
  want = ref_roi_align(features, boxes, out_h=2, out_w=2, scale=1 / 4, ratio=3, aligned=True)
  np.testing.assert_allclose(got, want, atol=ATOL)


def test_linear_ramp_by_hand():
  # f(y, x) = x; box (2, 2, 6, 6) at scale 1, aligned: corners 1.5 and 5.5, 2x2 bins of 2 pixels,
  # samples at x = 2, 3 (left bin) and 4, 5 (right bin), so the bins read 2.5 and 4.5.
  features = np.broadcast_to(np.arange(WIDTH, dtype=np.float32)[None, :, None], (HEIGHT, WIDTH, 1))
  got = roi_align(features, np.array([[2.0, 2.0, 6.0, 6.0]]), output_size=2, spatial_scale=1.0)
  np.testing.assert_allclose(got[0, :, :, 0], [[2.5, 4.5], [2.5, 4.5]], atol=1e-6)


def test_gradients_flow_into_features_only():
  scale = 1 / 4
  features, boxes = random_features(4), random_boxes(4, scale)
  cotangent = np.random.default_rng(5).standard_normal((len(boxes), 7, 5, CHANNELS))
  cotangent = cotangent.astype(np.float32)

  @jax.jit
  def grads(features, boxes):
    def objective(features, boxes):
      pooled = roi_align(features, boxes, output_size=(7, 5), spatial_scale=scale)
      return jnp.sum(pooled * cotangent)

    return jax.grad(objective, argnums=(0, 1))(features, boxes)

  grad_features, grad_boxes = grads(features, boxes)
  linear = ref_roi_align_map(HEIGHT, WIDTH, boxes, 7, 5, scale, 2, True)
  np.testing.assert_allclose(
    grad_features, np.einsum("rhwyx,rhwc->yxc", linear, cotangent), atol=ATOL
  )
  np.testing.assert_array_equal(grad_boxes, np.zeros_like(boxes))


@pytest.mark.parametrize("ratio", [0, -1])
def test_adaptive_sampling_is_rejected(ratio):
  with pytest.raises(ValueError, match="sampling_ratio"):
    roi_align(
      random_features(0),
      random_boxes(0, 1.0),
      output_size=2,
      spatial_scale=1.0,
      sampling_ratio=ratio,
    )


# ----------------------------------------------------------------------------- FPN levels


def square(size, x=10.0, y=20.0):
  return [x, y, x + size, y + size]


def test_assign_levels_by_hand():
  # floor(4 + log2(sqrt(area) / 224 + 1e-8)), clamped to [2, 5].
  boxes = [
    square(224),  # log2(1) = 0 -> 4
    square(112),  # -1 -> 3
    square(448),  # 1 -> 5
    square(223),  # log2(0.9955) < 0 -> 3
    square(225),  # log2(1.0045) > 0 -> 4
    square(56),  # -2 -> 2
    square(55),  # below -2 -> clamped to 2
    square(0.5),  # tiny -> 2
    square(5000),  # huge -> 5
    [0.0, 0.0, 112.0, 448.0],  # sqrt(area) = 224 -> 4
    [5.0, 5.0, 5.0, 100.0],  # zero area -> 2
    [0.0, 0.0, 224.0, -224.0],  # negative area -> 2
  ]
  got = assign_levels(np.array(boxes, np.float32))
  assert got.dtype == jnp.int32
  np.testing.assert_array_equal(got, [4, 3, 5, 3, 4, 2, 2, 2, 5, 4, 2, 2])
  narrow = assign_levels(np.array(boxes, np.float32), min_level=3, max_level=4)
  np.testing.assert_array_equal(narrow, [4, 3, 4, 3, 4, 3, 3, 3, 4, 4, 3, 3])
  coarse = assign_levels(np.array([square(100)], np.float32), canonical_size=100, canonical_level=3)
  np.testing.assert_array_equal(coarse, [3])


@functools.cache
def pyramid_case():
  """A 256x256 image's pyramid at strides 4..32, and boxes of every level (some partly outside)."""
  image = 256
  features = [
    random_features(level, (image // s, image // s, 2)) for level, s in enumerate(STRIDES)
  ]
  rng = np.random.default_rng(7)
  sizes = [30.0, 60.0, 130.0, 200.0, 250.0, 300.0, 460.0, 700.0, 2.0]
  corners = rng.uniform(-40, 200, (len(sizes), 2))
  boxes = np.array([square(s, x, y) for s, (x, y) in zip(sizes, corners, strict=True)], np.float32)
  levels = [2, 2, 3, 3, 4, 4, 5, 5, 2]
  return features, boxes, levels


def test_multilevel_pools_each_box_from_its_level():
  features, boxes, levels = pyramid_case()
  np.testing.assert_array_equal(assign_levels(boxes), levels)
  got = multilevel_jit(features, boxes, output_size=(7, 5))
  assert got.shape == (len(boxes), 7, 5, 2)
  for r, level in enumerate(levels):
    stride = STRIDES[level - 2]
    want = ref_roi_align(
      features[level - 2],
      boxes[r : r + 1],
      out_h=7,
      out_w=5,
      scale=1 / stride,
      ratio=2,
      aligned=True,
    )
    np.testing.assert_allclose(got[r : r + 1], want, atol=ATOL, err_msg=f"box {r}")


def test_multilevel_gradients_reach_only_the_chosen_levels():
  features, boxes, levels = pyramid_case()
  cotangent = np.random.default_rng(8).standard_normal((len(boxes), 7, 5, 2)).astype(np.float32)

  @jax.jit
  def grads(features, boxes):
    def objective(features, boxes):
      return jnp.sum(multilevel_roi_align(features, boxes, output_size=(7, 5)) * cotangent)

    return jax.grad(objective, argnums=(0, 1))(features, boxes)

  grad_features, grad_boxes = grads(features, boxes)
  for index, (level_features, grad) in enumerate(zip(features, grad_features, strict=True)):
    mine = np.array([level == index + 2 for level in levels])
    height, width, _ = level_features.shape
    linear = ref_roi_align_map(height, width, boxes[mine], 7, 5, 1 / STRIDES[index], 2, True)
    want = np.einsum("rhwyx,rhwc->yxc", linear, cotangent[mine])
    np.testing.assert_allclose(grad, want, rtol=1e-5, atol=ATOL, err_msg=f"level {index + 2}")
  np.testing.assert_array_equal(grad_boxes, np.zeros_like(boxes))


def test_multilevel_rejects_mismatched_strides():
  features, boxes, _ = pyramid_case()
  with pytest.raises(ValueError, match="strides"):
    multilevel_roi_align(features[:3], boxes, output_size=7)

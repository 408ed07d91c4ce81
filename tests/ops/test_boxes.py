"""segjax.ops.boxes against loop-based NumPy references and hand-worked values."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from segjax.ops.boxes import BoxCoder, box_area, box_iou, clip_boxes

SEEDS = (0, 1, 2)


def random_boxes(rng, n, extent=64.0):
  """Boxes partly outside [0, extent]², including tiny, zero-width and inverted (x2 < x1) ones."""
  x1 = rng.uniform(-0.25 * extent, 1.1 * extent, n)
  y1 = rng.uniform(-0.25 * extent, 1.1 * extent, n)
  w = rng.uniform(0.0, 0.5 * extent, n)
  h = rng.uniform(0.0, 0.5 * extent, n)
  kind = rng.integers(0, 8, n)
  w[kind == 0] = 0.0
  w[kind == 1] = -rng.uniform(0.1, 5.0, (kind == 1).sum())
  h[kind == 2] = 1e-3
  return np.stack([x1, y1, x1 + w, y1 + h], -1).astype(np.float32)


def ref_area(boxes):
  return np.array([max(x2 - x1, 0.0) * max(y2 - y1, 0.0) for x1, y1, x2, y2 in boxes.tolist()])


def ref_iou(boxes1, boxes2):
  out = np.zeros((len(boxes1), len(boxes2)))
  for i, a in enumerate(boxes1.tolist()):
    for j, b in enumerate(boxes2.tolist()):
      iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
      ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
      inter = iw * ih
      union = ref_area(np.array([a]))[0] + ref_area(np.array([b]))[0] - inter
      out[i, j] = inter / union if union > 0 else 0.0
  return out


@pytest.mark.parametrize("seed", SEEDS)
def test_area_and_iou_match_reference(seed):
  rng = np.random.default_rng(seed)
  a, b = random_boxes(rng, 37), random_boxes(rng, 23)
  np.testing.assert_allclose(box_area(a), ref_area(a), rtol=1e-5, atol=1e-5)
  iou = np.asarray(jax.jit(box_iou)(a, b))
  assert np.isfinite(iou).all()
  np.testing.assert_allclose(iou, ref_iou(a, b), rtol=1e-5, atol=1e-6)


def test_iou_by_hand():
  a = np.array([[0, 0, 2, 2], [0, 0, 2, 2], [5, 5, 5, 9], [3, 3, 1, 1]], np.float32)
  b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 5, 9], [10, 10, 12, 12]], np.float32)
  iou = np.asarray(box_iou(a, b))
  assert iou[0, 0] == pytest.approx(1 / 7)
  assert iou[1, 1] == 1.0
  assert iou[0, 3] == 0.0  # disjoint
  assert iou[2, 2] == 0.0  # zero-width with itself: empty union, not NaN
  np.testing.assert_array_equal(box_area(a[2:]), [0.0, 0.0])  # x2 < x1 and y2 < y1: area 0
  np.testing.assert_array_equal(iou[3], 0.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_clip_matches_reference(seed):
  rng = np.random.default_rng(seed)
  boxes = random_boxes(rng, 50).reshape(2, 25, 4)
  sizes = np.array([[48, 64], [64, 40]])
  clipped = jax.vmap(clip_boxes)(boxes, sizes[:, 0], sizes[:, 1])
  for image, (h, w), out in zip(boxes, sizes, np.asarray(clipped), strict=True):
    for (x1, y1, x2, y2), got in zip(image.tolist(), out, strict=True):
      want = [min(max(x1, 0), w), min(max(y1, 0), h), min(max(x2, 0), w), min(max(y2, 0), h)]
      np.testing.assert_allclose(got, want)


def ref_encode(ref, tgt, weights):
  out = []
  for (a1, b1, a2, b2), (t1, u1, t2, u2) in zip(ref.tolist(), tgt.tolist(), strict=True):
    aw, ah, tw, th = a2 - a1, b2 - b1, t2 - t1, u2 - u1
    ax, ay, tx, ty = a1 + aw / 2, b1 + ah / 2, t1 + tw / 2, u1 + th / 2
    out.append(
      [
        weights[0] * (tx - ax) / aw,
        weights[1] * (ty - ay) / ah,
        weights[2] * math.log(tw / aw),
        weights[3] * math.log(th / ah),
      ]
    )
  return np.array(out)


def ref_decode(deltas, ref, weights, clamp):
  out = []
  for d, (a1, b1, a2, b2) in zip(deltas.tolist(), ref.tolist(), strict=True):
    aw, ah = a2 - a1, b2 - b1
    ax, ay = a1 + aw / 2, b1 + ah / 2
    x = ax + aw * d[0] / weights[0]
    y = ay + ah * d[1] / weights[1]
    w = aw * math.exp(min(d[2] / weights[2], clamp))
    h = ah * math.exp(min(d[3] / weights[3], clamp))
    out.append([x - w / 2, y - h / 2, x + w / 2, y + h / 2])
  return np.array(out)


def positive_boxes(rng, n):
  xy = rng.uniform(-20, 100, (n, 2))
  wh = rng.uniform(0.5, 80, (n, 2))
  return np.concatenate([xy, xy + wh], -1).astype(np.float32)


@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)])
@pytest.mark.parametrize("seed", SEEDS)
def test_coder_matches_reference_and_round_trips(seed, weights):
  rng = np.random.default_rng(seed)
  coder = BoxCoder(weights=weights)
  ref, tgt = positive_boxes(rng, 40), positive_boxes(rng, 40)
  deltas = np.asarray(coder.encode(ref, tgt))
  np.testing.assert_allclose(deltas, ref_encode(ref, tgt, weights), rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(coder.decode(deltas, ref), tgt, rtol=1e-5, atol=1e-3)
  random_deltas = rng.normal(0, 2, (40, 4)).astype(np.float32)
  np.testing.assert_allclose(
    coder.decode(random_deltas, ref),
    ref_decode(random_deltas, ref, weights, coder.scale_clamp),
    rtol=1e-5,
    atol=1e-3,
  )


def test_coder_by_hand():
  coder = BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))
  ref = np.array([[0, 0, 10, 20]], np.float32)  # w 10, h 20, centre (5, 10)
  tgt = np.array([[2, 4, 22, 24]], np.float32)  # w 20, h 20, centre (12, 14)
  deltas = np.asarray(coder.encode(ref, tgt))
  np.testing.assert_allclose(deltas, [[7.0, 2.0, 5 * math.log(2), 0.0]], rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(coder.decode(deltas, ref), tgt, atol=1e-5)


def test_decode_clamps_huge_scale():
  ref = np.array([[0, 0, 10, 20]], np.float32)
  for coder in (BoxCoder(), BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))):
    out = np.asarray(coder.decode(np.array([[0, 0, 100.0, 1e4]], np.float32), ref))
    assert np.isfinite(out).all()
    # exp(log(1000/16)) = 62.5 times the reference size, around the same centre.
    np.testing.assert_allclose(out, [[5 - 312.5, 10 - 625, 5 + 312.5, 10 + 625]], rtol=1e-5)


def test_decode_class_specific_deltas():
  rng = np.random.default_rng(0)
  coder = BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))
  ref = positive_boxes(rng, 12)
  deltas = rng.normal(0, 1, (12, 3 * 4)).astype(np.float32)
  out = np.asarray(jax.jit(coder.decode)(deltas, ref))
  assert out.shape == (12, 12)
  for k in range(3):
    np.testing.assert_allclose(
      out[:, 4 * k : 4 * k + 4], coder.decode(deltas[:, 4 * k : 4 * k + 4], ref), rtol=1e-6
    )


def test_coder_is_hashable_static_config():
  coder = BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))
  assert hash(coder) == hash(BoxCoder(weights=(10.0, 10.0, 5.0, 5.0)))
  fn = jax.jit(lambda c, d, b: c.decode(d, b), static_argnums=0)
  assert fn(coder, jnp.zeros((1, 4)), jnp.array([[0.0, 0, 4, 4]])).shape == (1, 4)

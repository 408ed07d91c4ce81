"""Panoptic FPN's merge: hand-worked maps, and a transcription of detectron2's loop on random
detections."""

import functools

import jax
import numpy as np
import pytest

from segjax.models.panoptic.merge import merge_panoptic

THINGS = (7, 1)  # labels index these: label 0 is class 7
STUFF = (0, 2)
VOID = 255_000


def _mask(art):
  """bool[H,W] from rows of characters, `#` set."""
  return np.array([[c == "#" for c in row] for row in art.split()])


def _ids(art, **ids):
  """i32[H,W] from rows of characters: `.` is void, a letter the id given for it."""
  return np.array([[ids[c] if c != "." else VOID for c in row] for row in art.split()], np.int32)


def _classes(art):
  """i32[H,W] from rows of digits."""
  return np.array([[int(c) for c in row] for row in art.split()], np.int32)


NO_STUFF = _classes("\n".join(["11111111"] * 8))  # a thing class everywhere: no stuff segments


def _merge(masks, scores, labels, valid, semantic, **kwargs):
  """`merge_panoptic` of one image."""
  panoptic = merge_panoptic(
    np.asarray(masks)[None],
    np.asarray(scores, np.float32)[None],
    np.asarray(labels, np.int32)[None],
    np.asarray(valid)[None],
    semantic[None],
    things=THINGS,
    stuff=STUFF,
    **kwargs,
  )
  assert panoptic.dtype == np.int32
  return np.asarray(panoptic[0])


LOW = _mask("""
  ####....
  ####....
  ####....
  ####....
  ........
  ........
  ........
  ........
""")
HIGH = _mask("""
  ........
  ........
  ####....
  ####....
  ####....
  ####....
  ........
  ........
""")


def test_higher_score_first_and_half_overlap_kept():
  # HIGH comes second but scores higher: it is id 1. LOW then finds 8 of its 16 pixels taken,
  # exactly 0.5, not more: it keeps its free half as id 2.
  panoptic = _merge([LOW, HIGH], [0.6, 0.9], [1, 0], [True, True], NO_STUFF)
  expected = _ids(
    """
    llll....
    llll....
    hhhh....
    hhhh....
    hhhh....
    hhhh....
    ........
    ........
    """,
    h=7001,
    l=1002,
  )
  np.testing.assert_array_equal(panoptic, expected)


def test_overlap_over_threshold_skipped():
  # One more pixel of HIGH inside LOW: 9 of 16 taken, more than 0.5.
  high = HIGH.copy()
  high[1, 0] = True
  panoptic = _merge([LOW, high], [0.6, 0.9], [1, 0], [True, True], NO_STUFF)
  expected = _ids(
    """
    ........
    h.......
    hhhh....
    hhhh....
    hhhh....
    hhhh....
    ........
    ........
    """,
    h=7001,
  )
  np.testing.assert_array_equal(panoptic, expected)
  # A looser threshold keeps it.
  panoptic = _merge([LOW, high], [0.6, 0.9], [1, 0], [True, True], NO_STUFF, overlap_threshold=0.6)
  assert (panoptic == 1002).sum() == 7


def test_low_score_invalid_and_empty_detections_skipped():
  a = _mask("##......\n" * 8)
  b = _mask("..##....\n" * 8)
  c = _mask("....##..\n" * 8)
  empty = np.zeros((8, 8), bool)
  panoptic = _merge(
    [empty, a, b, c],
    [0.99, 0.49, 0.95, 0.5],
    [0, 0, 0, 1],
    [True, True, False, True],
    NO_STUFF,
  )
  # Only `c` is painted (a score of exactly the threshold is enough), and the empty mask before
  # it took no id.
  expected = _ids("....cc..\n" * 8, c=1001)
  np.testing.assert_array_equal(panoptic, expected)


def test_score_threshold_compares_as_float64():
  # float32(0.7) < 0.7 in float64, so detectron2 skips it; float32(0.7) == 0.7 in float32.
  mask = _mask("####....\n" * 8)
  args = ([mask], np.float32([0.7]), [0], [True], NO_STUFF)
  assert (_merge(*args, score_threshold=0.7) == VOID).all()
  assert (_merge(*args, score_threshold=0.69) == 7001).all(where=mask)


SEMANTIC = _classes("""
  00002222
  00002222
  00002222
  00002222
  00001111
  00001111
  00001111
  00001111
""")
THING = _mask("""
  ..####..
  ..####..
  ..####..
  ..####..
  ........
  ........
  ........
  ........
""")


@pytest.mark.parametrize("stuff_area", [8, 9])
def test_stuff_takes_what_things_left_if_enough(stuff_area):
  # Class 0 has 24 free pixels, class 2 has 8 (16 less 8 under the thing): at a limit of 9 only
  # class 0 is kept. Class 1 is a thing class without a detection: void, however large.
  panoptic = _merge([THING], [0.9], [0], [True], SEMANTIC, stuff_area=stuff_area)
  expected = _ids(
    """
    ssttttuu
    ssttttuu
    ssttttuu
    ssttttuu
    ssss....
    ssss....
    ssss....
    ssss....
    """,
    s=0,
    t=7001,
    u=2000 if stuff_area == 8 else VOID,
  )
  np.testing.assert_array_equal(panoptic, expected)


def _random_case(rng, h=16, w=20, d=10):
  """One image's masks, scores, labels, valid and semantic map, without the batch axis."""
  masks = np.zeros((d, h, w), bool)
  heights = np.zeros(d, int)
  source = np.full(d, -1)
  for i in range(d):
    if rng.random() < 0.1:
      continue  # empty
    if i and rng.random() < 0.4:
      # An earlier box moved down by half its height, scoring lower: overlaps of exactly 0.5.
      source[i] = rng.integers(0, i)
      heights[i] = heights[source[i]]
      masks[i] = np.roll(masks[source[i]], max(heights[i] // 2, 1), axis=0)
    else:
      y, x, heights[i] = rng.integers(0, h - 2), rng.integers(0, w - 2), 2 * rng.integers(1, 5)
      masks[i, y : y + heights[i], x : x + rng.integers(2, 9)] = True
      if rng.random() < 0.3:
        masks[i] &= rng.random((h, w)) < 0.8  # holes
  # One decimal: ties, scores at the thresholds, and float32(0.7) < 0.7.
  scores = np.round(rng.uniform(0.4, 1.0, d), 1)
  for i in np.nonzero(source >= 0)[0]:
    scores[i] = min(scores[i], scores[source[i]])
  labels = rng.integers(0, len(THINGS), d).astype(np.int32)
  valid = rng.random(d) < 0.85
  blocks = rng.choice(THINGS + STUFF, (h // 4, w // 4))
  semantic = np.kron(blocks, np.ones((4, 4), np.int32)).astype(np.int32)
  return masks, scores.astype(np.float32), labels, valid, semantic


def _detectron2(masks, scores, labels, valid, semantic, score_thr, overlap_thr, stuff_area):
  """detectron2's `combine_semantic_and_instance_outputs` on numpy (detections in order of
  their slots, so ties in score go to the lower slot), then its segments as segjax ids."""
  panoptic_seg = np.zeros(semantic.shape, np.int32)
  current_segment_id = 0
  segments_info = []
  sorted_inds = sorted((i for i in range(len(scores)) if valid[i]), key=lambda i: -float(scores[i]))
  for inst_id in sorted_inds:
    score = float(scores[inst_id])
    if score < score_thr:
      break
    mask = masks[inst_id]
    mask_area = mask.sum()
    if mask_area == 0:
      continue
    intersect = (mask > 0) & (panoptic_seg > 0)
    intersect_area = intersect.sum()
    if intersect_area * 1.0 / mask_area > overlap_thr:
      continue
    if intersect_area > 0:
      mask = mask & (panoptic_seg == 0)
    current_segment_id += 1
    panoptic_seg[mask] = current_segment_id
    segments_info.append(
      {"id": current_segment_id, "isthing": True, "category_id": THINGS[labels[inst_id]]}
    )
  for semantic_label in np.unique(semantic).tolist():
    if semantic_label not in STUFF:
      continue
    mask = (semantic == semantic_label) & (panoptic_seg == 0)
    if mask.sum() < stuff_area:
      continue
    current_segment_id += 1
    panoptic_seg[mask] = current_segment_id
    segments_info.append(
      {"id": current_segment_id, "isthing": False, "category_id": semantic_label}
    )

  result = np.full(semantic.shape, VOID, np.int32)
  for segment in segments_info:
    instance = segment["id"] if segment["isthing"] else 0  # things come first: ids 1, 2, ...
    result[panoptic_seg == segment["id"]] = segment["category_id"] * 1000 + instance
  return result


@pytest.mark.parametrize("seed", range(10))
def test_matches_detectron2_loop(seed):
  rng = np.random.default_rng(seed)
  case = _random_case(rng)
  score_thr = [0.5, 0.7][seed % 2]
  overlap_thr = [0.5, 0.5, 0.3, 0.7][seed % 4]
  # The whole area of a stuff class: kept if no thing covers any of it.
  stuff_area = int(np.sum(case[-1] == STUFF[seed % 2]))
  panoptic = _merge(
    *case, score_threshold=score_thr, overlap_threshold=overlap_thr, stuff_area=stuff_area
  )
  expected = _detectron2(*case, score_thr, overlap_thr, stuff_area)
  np.testing.assert_array_equal(panoptic, expected)


def test_batch_equals_images_and_jit_compiles():
  rng = np.random.default_rng(42)
  cases = [_random_case(rng) for _ in range(2)]
  batch = [np.stack(arrays) for arrays in zip(*cases, strict=True)]
  merge = functools.partial(merge_panoptic, things=THINGS, stuff=STUFF, stuff_area=10)
  jitted = jax.jit(merge).lower(*batch).compile()
  panoptic = np.asarray(jitted(*batch))
  assert panoptic.shape == (2, 16, 20)
  for i, case in enumerate(cases):
    alone = merge(*(np.asarray(a)[None] for a in case))
    np.testing.assert_array_equal(panoptic[i], alone[0])
  # The two images differ, so a mix-up between them would show.
  assert (panoptic[0] != panoptic[1]).any()

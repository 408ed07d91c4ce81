"""Procedural street scenes: the generator behind the built-in `shapes` data set.

A scene is a small street view rendered with numpy alone. Stuff: sky, a skyline of buildings along
the horizon, a road in perspective (a cross street plus a main road flanked by sidewalks, all
labelled road) and thin poles. Things: cars, persons and signs. Ground objects stand on a flat
ground plane seen by a pinhole camera, so an object of height `h` metres whose foot is at image row
`y` spans `(y - horizon) * h / camera_height` of the image: nearer objects are lower, larger and
drawn in front (painter's algorithm), which gives natural occlusion.

All geometry, colours and camera settings are drawn in size-independent units (fractions of the
image side) from one random stream, so a seed yields the same scene at every `size`; only
per-pixel noise (asphalt grain, sensor noise) comes from a second stream derived from the seed.

This module composes a scene (street layout, object placement, void, camera); the canvas and label
scheme are in `shapes_canvas`, the painters of sky, buildings, ground and objects in
`shapes_elements`.
"""

from collections.abc import Callable

import numpy as np

from segjax.data.builders.shapes_canvas import (
  CLASS_NAMES,
  IGNORE_INDEX,
  LABEL_DIVISOR,
  STUFF_CLASSES,
  THING_CLASSES,
  Canvas,
  Random,
  View,
  random_colour,
)
from segjax.data.builders.shapes_elements import (
  draw_buildings,
  draw_car,
  draw_ground,
  draw_person,
  draw_pole,
  draw_sign,
  draw_sky,
)

__all__ = [
  "CLASS_NAMES",
  "IGNORE_INDEX",
  "LABEL_DIVISOR",
  "STUFF_CLASSES",
  "THING_CLASSES",
  "render_scene",
]

# Things with fewer visible pixels than this (at 128 px; scaled by area) become void: they are
# unlearnable fragments and would otherwise be noise in instance metrics.
_MIN_PIXELS_AT_128 = 4


_Draw = Callable[[], None]


def _place_objects(
  canvas: Canvas,
  rng: Random,
  view: View,
  facades: list[tuple[float, float, float, float]],
) -> list[tuple[float, _Draw]]:
  """Samples poles, signs, cars and persons; returns (foot row, draw) pairs to paint far first."""
  objects: list[tuple[float, _Draw]] = []

  def add(y_foot: float, draw: Callable, *args):
    objects.append((y_foot, lambda: draw(canvas, rng, *args)))

  def sidewalk_x(y: float) -> float:
    """A point on a near sidewalk at row y, or at a kerb if the visible sidewalks are too narrow."""
    left, right = view.road_edges(y)
    spans = [(0.0, left - 0.02), (right + 0.02, 1.0)]
    spans = [(a, b) for a, b in spans if b - a > 0.02]
    if not spans:
      kerb = left - 0.01 if rng.random() < 0.5 else right + 0.01
      return min(max(kerb, 0.01), 0.99)
    a, b = spans[rng.choice(len(spans))]
    return rng.uniform(a, b)

  n_signs = 0
  for _ in range(rng.choice(3, p=(0.4, 0.4, 0.2))):
    y = view.foot(rng.uniform(view.cross_street + 0.05, 0.9))
    sign = n_signs < 2 and rng.random() < 0.55
    n_signs += sign
    add(y, draw_pole, view, sidewalk_x(y), y, sign)
  for _ in range(min(rng.integers(0, 2), 2 - n_signs)):
    if facades:  # shop sign on a facade: behind everything standing on the ground
      x0, y0, x1, y1 = facades[rng.choice(len(facades))]
      cx = rng.uniform(x0 + 0.02, x1 - 0.02)
      cy = rng.uniform(max(y0, 0.0) + 0.5 * (y1 - max(y0, 0.0)), y1 - 0.02)
      add(view.horizon, draw_sign, cx, cy, rng.uniform(0.02, 0.045))

  n_cars = rng.integers(0, 6)
  while n_cars > 0:
    if rng.random() < 0.45:
      # A queue in the cross street or cars parked bumper to bumper: touching, overlapping cars.
      count = min(n_cars, rng.integers(2, 4))
      y = view.foot(rng.uniform(view.far_walk + 0.02, min(view.cross_street + 0.25, 0.7)))
      length = view.metre(y) * 1.5 * 2.75
      x = rng.uniform(-0.1, max(1.0 - 0.5 * count * length, 0.0))
      for _ in range(count):
        add(y + rng.uniform(-0.002, 0.002), draw_car, view, x, y, True)
        x += length * rng.uniform(0.85, 1.0)
      n_cars -= count
    else:
      y = view.foot(rng.uniform(view.cross_street, 0.95) ** 1.3)
      y = max(y, view.foot(view.far_walk + 0.03))
      left, right = view.road_edges(y)
      if y < view.foot(view.cross_street):  # crossing traffic, seen side-on
        add(y, draw_car, view, rng.uniform(0.0, 1.0), y, True)
      else:
        add(y, draw_car, view, rng.uniform(left + 0.03, right - 0.03), y, rng.random() < 0.2)
      n_cars -= 1

  n_persons = rng.integers(0, 5)
  while n_persons > 0:
    y = view.foot(rng.uniform(view.far_walk * 0.5, 0.9) ** 1.2)
    x = sidewalk_x(y) if rng.random() < 0.65 else rng.uniform(0.0, 1.0)
    count = min(n_persons, rng.integers(2, 4)) if rng.random() < 0.35 else 1
    for _ in range(count):  # a group walks shoulder to shoulder
      add(y, draw_person, view, x, y)
      x += view.metre(y) * rng.uniform(0.35, 0.6)
      y += rng.uniform(-0.01, 0.01)
    n_persons -= count
  return objects


def _draw_void(canvas: Canvas, rng: Random):
  """Unlabelled blobs (objects nobody annotated) and an unlabelled border band."""
  for _ in range(rng.integers(0, 3)):
    cx, cy = rng.uniform(0.05, 0.95), rng.uniform(0.15, 0.95)
    rx, ry = rng.uniform(0.015, 0.05), rng.uniform(0.015, 0.05)
    if rng.random() < 0.5:
      shape = canvas.ellipse(cx, cy, rx, ry)
    else:
      shape = canvas.rect(cx - rx, cy - ry, cx + rx, cy + ry)
    a, b = random_colour(rng), random_colour(rng)
    yy, xx = canvas.coords(shape)
    freq = rng.uniform(20, 60)
    stripes = (np.sin(xx * freq + yy * freq * rng.uniform(-1, 1)) > 0)[..., None]
    canvas.paint(shape, np.where(stripes, a, b), IGNORE_INDEX)
  # The border keeps its image; only its labels are missing. Widths are 0-3 px at 128 px.
  left, top, right, bottom = (round(rng.integers(0, 4) * canvas.size / 128) for _ in range(4))
  void = IGNORE_INDEX * LABEL_DIVISOR
  canvas.panoptic[:, :left] = void
  canvas.panoptic[:top] = void
  canvas.panoptic[:, canvas.size - right :] = void
  canvas.panoptic[canvas.size - bottom :] = void


def _camera(image: np.ndarray, rng: Random, noise: np.random.Generator) -> np.ndarray:
  """Exposure, contrast, white balance, vignetting, lens blur and sensor noise; f32 -> u8.

  Settings come from `rng` (size-independent, like the layout); only the per-pixel sensor noise
  comes from `noise`.
  """
  size = image.shape[0]
  contrast = rng.uniform(0.7, 1.2)
  gain = rng.uniform(0.75, 1.25) * np.array([rng.uniform(0.9, 1.1) for _ in range(3)], np.float32)
  vignetting, blur, sensor = rng.uniform(0.0, 0.6), rng.uniform(0.0, 0.12), rng.uniform(2.0, 7.0)
  r = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
  vignette = 1.0 - vignetting * (r[:, None] ** 2 + r[None, :] ** 2)
  # Contrast about the mean, then per-channel gain (exposure and white balance) and vignetting.
  image = (image * contrast + (1.0 - contrast) * image.mean()) * gain * vignette[..., None]
  # Light blur so edges are not perfectly crisp; neighbours via edge-replicated padding.
  padded = np.pad(image, ((1, 1), (1, 1), (0, 0)), mode="edge")
  image *= 1.0 - 4 * blur
  image += blur * (padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:])
  image += noise.standard_normal(image.shape, dtype=np.float32) * sensor
  return np.clip(image + 0.5, 0, 255).astype(np.uint8)  # +0.5 then truncation rounds


def render_scene(seed: int, size: int = 128) -> dict[str, np.ndarray]:
  """Renders one street scene with semantic, panoptic and instance labels.

  Args:
    seed: the scene; the same seed gives the same layout at every size.
    size: image side in pixels (64, 128 and 256 are the data set's configs).

  Returns:
    A dict with
      image: u8[H,W,3].
      semantic: u8[H,W] class ids, `IGNORE_INDEX` (255) for void.
      panoptic: i32[H,W] `class * LABEL_DIVISOR + instance`; instance is 0 for stuff and void
        (void is 255000) and k + 1 for pixels of masks[k].
      masks: bool[N,H,W] visible pixels of each thing, disjoint, none empty.
      boxes: f32[N,4] tight (x1, y1, x2, y2) box of each mask, x2 and y2 exclusive.
      labels: i64[N] class of each thing (car, person or sign).
  """
  if size < 16:
    raise ValueError(f"size must be at least 16, got {size}")
  layout_generator, noise = np.random.default_rng(seed).spawn(2)
  layout = Random(layout_generator)
  view = View(
    horizon=layout.uniform(0.4, 0.55),
    camera_height=layout.uniform(1.3, 2.2),
    vanish_x=layout.uniform(0.35, 0.65),
    road_left=layout.uniform(-0.4, 0.2),
    road_right=layout.uniform(0.8, 1.4),
    far_walk=layout.uniform(0.03, 0.07),
    cross_street=layout.uniform(0.14, 0.24),
  )
  canvas = Canvas(size)
  sky = draw_sky(canvas, layout, view)
  draw_ground(canvas, layout, noise, view)
  facades = draw_buildings(canvas, layout, view, sky)
  objects = _place_objects(canvas, layout, view, facades)
  for _, draw in sorted(objects, key=lambda o: o[0]):  # stable: ties keep placement order
    draw()
  _draw_void(canvas, layout)

  semantic = canvas.panoptic // LABEL_DIVISOR
  instance = canvas.panoptic % LABEL_DIVISOR
  min_pixels = max(_MIN_PIXELS_AT_128, round(_MIN_PIXELS_AT_128 * (size / 128) ** 2))
  counts = np.bincount(instance.ravel(), minlength=len(canvas.thing_classes) + 1)
  keep = counts >= min_pixels
  keep[0] = False  # stuff and void
  semantic[(instance > 0) & ~keep[instance]] = IGNORE_INDEX
  renumber = np.zeros(len(keep), np.int32)
  renumber[keep] = np.arange(1, keep.sum() + 1)
  instance = renumber[instance]

  n = int(keep.sum())
  masks = instance[None] == np.arange(1, n + 1, dtype=np.int32)[:, None, None]
  rows, cols = masks.any(axis=2), masks.any(axis=1)
  boxes = np.stack(
    [
      cols.argmax(1),
      rows.argmax(1),
      size - cols[:, ::-1].argmax(1),
      size - rows[:, ::-1].argmax(1),
    ],
    axis=1,
  ).astype(np.float32)
  return {
    "image": _camera(canvas.image, layout, noise),
    "semantic": semantic.astype(np.uint8),
    "panoptic": semantic * LABEL_DIVISOR + instance,
    "masks": masks,
    "boxes": boxes,
    "labels": np.asarray(canvas.thing_classes, np.int64)[keep[1:]],
  }

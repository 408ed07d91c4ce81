"""The drawing surface of the procedural street scenes (see `shapes_scene`).

The panoptic label scheme, the block-wise random stream every draw comes from, the camera and
street geometry in size-independent units, and the painter's-algorithm canvas that rasterises
shapes and writes colour and label together, with the colour and shading helpers the painters share.
"""

import bisect
import dataclasses
import itertools
import math
from typing import NamedTuple

import numpy as np

CLASS_NAMES = ("sky", "road", "building", "pole", "car", "person", "sign")
SKY, ROAD, BUILDING, POLE, CAR, PERSON, SIGN = range(len(CLASS_NAMES))
STUFF_CLASSES = (SKY, ROAD, BUILDING, POLE)
THING_CLASSES = (CAR, PERSON, SIGN)
IGNORE_INDEX = 255
LABEL_DIVISOR = 1000


class Random:
  """Scalar random draws from a numpy Generator, taken in blocks.

  A scene makes hundreds of scalar draws and `Generator`'s per-call overhead (microseconds each)
  dominated rendering time; consuming pre-drawn blocks is nearly free and stays a pure function of
  the seed. Array draws go to `generator` directly.
  """

  _BLOCK = 256

  def __init__(self, generator: np.random.Generator):
    self.generator = generator
    self._uniforms: list[float] = []
    self._normals = np.zeros(0, np.float32)

  def random(self) -> float:
    """Uniform in [0, 1)."""
    if not self._uniforms:
      self._uniforms = self.generator.random(self._BLOCK).tolist()
    return self._uniforms.pop()

  def uniform(self, low: float, high: float) -> float:
    return low + (high - low) * self.random()

  def integers(self, low: int, high: int) -> int:
    """Uniform integer in [low, high)."""
    return low + int((high - low) * self.random())

  def choice(self, n: int, p: tuple[float, ...] | None = None) -> int:
    """An index in [0, n), uniform or with probabilities proportional to `p`."""
    if p is None:
      return self.integers(0, n)
    cumulative = list(itertools.accumulate(p))
    return min(bisect.bisect_right(cumulative, self.random() * cumulative[-1]), n - 1)

  def sign(self) -> float:
    return 1.0 if self.random() < 0.5 else -1.0

  def normal(self, n: int) -> np.ndarray:
    """f32[n] standard normal."""
    if len(self._normals) < n:
      self._normals = self.generator.standard_normal(self._BLOCK, dtype=np.float32)
    draws, self._normals = self._normals[:n], self._normals[n:]
    return draws


class Shape(NamedTuple):
  """A rasterised region: rows r0:r1, columns c0:c1, and a mask within that box (None: all)."""

  r0: int
  r1: int
  c0: int
  c1: int
  mask: np.ndarray | None


@dataclasses.dataclass(frozen=True)
class View:
  """Camera and street geometry, in fractions of the image side (y grows downwards)."""

  horizon: float
  camera_height: float  # metres
  vanish_x: float  # the main road's edges meet here on the horizon
  road_left: float  # x of the main road's edges on the bottom row
  road_right: float
  far_walk: float  # depth fraction t (0 at horizon, 1 at bottom) where the far sidewalk ends
  cross_street: float  # t where the cross street ends and the main road starts

  def metre(self, y_foot: float) -> float:
    """Image units per metre for an object standing at row `y_foot`."""
    return (y_foot - self.horizon) / self.camera_height

  def foot(self, t: float) -> float:
    """Image row of ground depth fraction `t`."""
    return self.horizon + t * (1.0 - self.horizon)

  def road_edges(self, y: float) -> tuple[float, float]:
    """x of the main road's left and right edges at row `y`."""
    t = (y - self.horizon) / (1.0 - self.horizon)
    return (
      self.vanish_x + (self.road_left - self.vanish_x) * t,
      self.vanish_x + (self.road_right - self.vanish_x) * t,
    )


class Canvas:
  """Painter's-algorithm canvas: each paint overwrites colour and panoptic label."""

  def __init__(self, size: int):
    self.size = size
    self.image = np.zeros((size, size, 3), np.float32)
    # class * LABEL_DIVISOR + k for the k-th thing created (renumbered at the end); 0 for stuff.
    self.panoptic = np.zeros((size, size), np.int32)
    self.thing_classes: list[int] = []
    self.centres = (np.arange(size, dtype=np.float32) + 0.5) / size

  def new_thing(self, cls: int) -> int:
    """Registers a thing of class `cls`; returns its (provisional) instance id."""
    self.thing_classes.append(cls)
    return len(self.thing_classes)

  def rect(self, x0: float, y0: float, x1: float, y1: float, min_px: int = 0) -> Shape:
    """Axis-aligned box; `min_px` keeps thin structures at least that many pixels wide."""
    s = self.size
    c0, c1 = round(x0 * s), round(x1 * s)
    if c1 - c0 < min_px:
      c0 = round((x0 + x1) / 2 * s - min_px / 2)
      c1 = c0 + min_px
    r0, r1 = round(y0 * s), round(y1 * s)
    if r1 - r0 < min_px:
      r0 = round((y0 + y1) / 2 * s - min_px / 2)
      r1 = r0 + min_px
    r0, r1, c0, c1 = max(r0, 0), min(r1, s), max(c0, 0), min(c1, s)
    return Shape(r0, max(r1, r0), c0, max(c1, c0), None)

  def _box(self, x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int]:
    """Pixel box covering a region, clipped to the canvas (empty when off-canvas)."""
    s = self.size
    r0, r1 = max(math.floor(y0 * s), 0), min(math.ceil(y1 * s), s)
    c0, c1 = max(math.floor(x0 * s), 0), min(math.ceil(x1 * s), s)
    return r0, max(r1, r0), c0, max(c1, c0)

  def ellipse(self, cx: float, cy: float, rx: float, ry: float) -> Shape:
    r0, r1, c0, c1 = self._box(cx - rx, cy - ry, cx + rx, cy + ry)
    yy, xx = self.centres[r0:r1, None], self.centres[None, c0:c1]
    mask = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
    return Shape(r0, r1, c0, c1, mask)

  def polygon(self, points: list[tuple[float, float]]) -> Shape:
    """Convex polygon with vertices (x, y) in either winding order."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    r0, r1, c0, c1 = self._box(min(xs), min(ys), max(xs), max(ys))
    yy, xx = self.centres[r0:r1, None], self.centres[None, c0:c1]
    n = len(points)
    area = sum(xs[i] * ys[(i + 1) % n] - xs[(i + 1) % n] * ys[i] for i in range(n))
    orient = 1.0 if area >= 0 else -1.0
    mask = np.ones((r1 - r0, c1 - c0), bool)
    for i in range(n):
      ax, ay, bx, by = xs[i], ys[i], xs[(i + 1) % n], ys[(i + 1) % n]
      mask &= ((bx - ax) * (yy - ay) - (by - ay) * (xx - ax)) * orient >= 0
    return Shape(r0, r1, c0, c1, mask)

  def coords(self, shape: Shape) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates of a shape's box: y f32[h,1], x f32[1,w]."""
    return self.centres[shape.r0 : shape.r1, None], self.centres[None, shape.c0 : shape.c1]

  def paint(self, shape: Shape, colour: np.ndarray, cls: int, instance: int = 0):
    """Paints `colour` (f32[3] or broadcastable to f32[h,w,3]) and labels the pixels."""
    r0, r1, c0, c1, mask = shape
    if r1 <= r0 or c1 <= c0:
      return
    label = cls * LABEL_DIVISOR + instance
    if mask is None:
      self.image[r0:r1, c0:c1] = colour
      self.panoptic[r0:r1, c0:c1] = label
    else:
      np.copyto(self.image[r0:r1, c0:c1], colour, where=mask[..., None])
      np.copyto(self.panoptic[r0:r1, c0:c1], label, where=mask)

  def tint(self, shape: Shape, colour: np.ndarray, alpha: float):
    """Blends colour into the image only, keeping labels (clouds)."""
    r0, r1, c0, c1, mask = shape
    if r1 <= r0 or c1 <= c0:
      return
    image = self.image[r0:r1, c0:c1]
    image += alpha * mask[..., None] * (colour - image)


def jitter(rng: Random, colour: np.ndarray, spread: float = 14.0) -> np.ndarray:
  """A per-instance variant of a base colour: brightness scale plus per-channel offset."""
  # Out-of-range values are fine: the camera clips the final image.
  return colour.astype(np.float32) * rng.uniform(0.8, 1.15) + spread * rng.normal(3)


def pick(
  rng: Random, palette: np.ndarray, p: tuple[float, ...] | None = None, spread: float = 14.0
) -> np.ndarray:
  """A jittered colour from a palette f32[K,3], uniformly or with relative weights `p`."""
  return jitter(rng, palette[rng.choice(len(palette), p=p)], spread)


def random_colour(rng: Random) -> np.ndarray:
  """A uniformly random colour f32[3], for clothes, awnings and unlabelled clutter."""
  return np.array([rng.uniform(20, 235) for _ in range(3)], np.float32)


def frac(x: np.ndarray) -> np.ndarray:
  """Fractional part, for periodic patterns (much faster than float `%` in numpy)."""
  return x - np.floor(x)


def vertical_shade(yy: np.ndarray, top: float, height: float, strength: float) -> np.ndarray:
  """f32[h,1,1] multiplier: lit from above, `strength` darker at the bottom."""
  t = np.clip((yy - top) / max(height, 1e-6), 0.0, 1.0)
  return (1.0 + strength * (0.5 - t))[..., None]

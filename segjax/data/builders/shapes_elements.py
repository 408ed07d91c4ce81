"""Painters for the elements of the procedural street scenes (see `shapes_scene`).

Stuff (sky, buildings, the ground with its roads and sidewalks) and the objects standing on the
ground (poles, signs, cars and persons), with their colour palettes. Each painter draws one element
onto the canvas at a position the scene chooses, taking its own shape and colours from the stream.
"""

import numpy as np

from segjax.data.builders.shapes_canvas import (
  BUILDING,
  CAR,
  PERSON,
  POLE,
  ROAD,
  SIGN,
  SKY,
  Canvas,
  Random,
  Shape,
  View,
  frac,
  jitter,
  pick,
  random_colour,
  vertical_shade,
)

_CAR_COLOURS = np.array(
  [
    [235, 235, 232],  # white
    [30, 30, 35],  # black
    [168, 170, 176],  # silver
    [105, 108, 114],  # grey
    [165, 30, 32],  # red
    [35, 52, 110],  # dark blue
    [100, 140, 190],  # light blue
    [40, 90, 60],  # green
    [200, 185, 150],  # beige
    [220, 190, 45],  # yellow
    [205, 110, 40],  # orange
    [100, 70, 50],  # brown
  ],
  np.float32,
)
# Relative frequencies: real traffic is mostly achromatic.
_CAR_COLOUR_WEIGHTS = (5, 4, 4, 3, 2, 2, 1, 1, 1, 0.5, 0.5, 1)

_FACADE_COLOURS = np.array(
  [
    [150, 150, 148],  # concrete
    [205, 190, 160],  # sandstone
    [150, 78, 58],  # brick
    [100, 58, 46],  # dark brick
    [160, 180, 200],  # pastel blue
    [170, 190, 160],  # pastel green
    [212, 172, 165],  # pink render
    [80, 110, 140],  # glass
    [225, 224, 218],  # white render
  ],
  np.float32,
)
_PAVEMENT_COLOURS = np.array(
  [[160, 156, 150], [190, 180, 160], [150, 102, 92], [118, 118, 124]], np.float32
)
_POLE_COLOURS = np.array([[92, 92, 97], [50, 72, 56], [36, 36, 40], [155, 155, 160]], np.float32)
_SKIN_COLOURS = np.array(
  [[238, 200, 172], [210, 160, 122], [152, 102, 72], [92, 62, 42]], np.float32
)
_HAIR_COLOURS = np.array([[25, 20, 18], [80, 55, 35], [200, 170, 110], [150, 150, 150]], np.float32)
_TROUSER_COLOURS = np.array(
  [[45, 60, 100], [30, 30, 35], [150, 130, 95], [90, 90, 95], [70, 80, 60]], np.float32
)
_SIGN_COLOURS = np.array(
  [
    [200, 30, 35],  # red
    [30, 72, 170],  # blue
    [235, 200, 40],  # yellow
    [235, 235, 235],  # white
    [30, 130, 72],  # green
    [230, 122, 30],  # orange
  ],
  np.float32,
)


def draw_sky(canvas: Canvas, rng: Random, view: View) -> np.ndarray:
  """Sky gradient with clouds; returns the horizon colour (reused for haze and reflections)."""
  kind = rng.choice(3, p=(0.55, 0.3, 0.15))
  if kind == 0:  # clear
    zenith, low = jitter(rng, np.array([70, 120, 200])), jitter(rng, np.array([175, 200, 228]))
  elif kind == 1:  # overcast: as grey as concrete and silver cars
    grey = rng.uniform(130, 225)
    zenith = jitter(rng, np.array([grey - 15, grey - 8, grey]), 6)
    low = jitter(rng, np.array([grey + 15, grey + 15, grey + 15]), 6)
  else:  # dusk
    zenith, low = jitter(rng, np.array([85, 80, 140])), jitter(rng, np.array([238, 160, 105]))
  shape = canvas.rect(0.0, 0.0, 1.0, view.horizon)
  yy, _ = canvas.coords(shape)
  t = np.clip(yy / view.horizon, 0.0, 1.0)[..., None] ** 0.7
  canvas.paint(shape, zenith + (low - zenith) * t, SKY)
  cloud = jitter(rng, np.array([235, 235, 238]), 8)
  for _ in range(rng.integers(0, 4)):
    cx, cy = rng.uniform(0.0, 1.0), rng.uniform(0.05, 0.7) * view.horizon
    rx = rng.uniform(0.04, 0.12)
    alpha = rng.uniform(0.3, 0.8)
    for _ in range(3):
      puff = canvas.ellipse(cx + rng.uniform(-1.0, 1.0) * rx, cy, rx, rx * rng.uniform(0.2, 0.4))
      canvas.tint(puff, cloud, alpha)
  return low


def _draw_facade(
  canvas: Canvas,
  rng: Random,
  box: tuple[float, float, float, float],
  haze: float,
  sky: np.ndarray,
):
  """One building block: shaded wall, window grid, cornice and a shop-front ground floor."""
  x0, y0, x1, y1 = box
  wall = pick(rng, _FACADE_COLOURS)
  pitch_x, pitch_y = rng.uniform(0.022, 0.05), rng.uniform(0.03, 0.055)
  fill_x, fill_y = rng.uniform(0.35, 0.7), rng.uniform(0.35, 0.65)
  margin = rng.uniform(0.2, 1.0) * pitch_x
  cornice = rng.uniform(0.004, 0.015)
  shop = rng.uniform(0.02, 0.045)
  # Windows are dark glass, mirror the sky (same colours as the sky itself) or are lit.
  n_cols = int((x1 - x0) / pitch_x) + 2
  n_rows = int((y1 - y0) / pitch_y) + 2
  styles = np.stack([jitter(rng, np.array([45, 55, 70])), jitter(rng, sky), jitter(rng, wall)])
  p_style = np.cumsum([2.0 * rng.random(), 1.5 * rng.random(), 0.5 * rng.random()])
  draws = rng.generator.random((2, n_rows, n_cols))
  windows = styles[np.searchsorted(p_style, draws[0] * p_style[-1]).clip(max=2)]
  windows[draws[1] < 0.12] = jitter(rng, np.array([235, 205, 120]))
  pilasters = rng.random() < 0.3

  shop_glass = jitter(rng, np.array([60, 60, 65]), 25)
  awning = random_colour(rng)
  # Materials: 0 wall, 1 pilaster, 2 cornice, 3 shop window, 4 awning, 5+ one entry per window.
  palette = np.concatenate(
    [np.stack([wall, wall * 0.8, wall * 0.7, shop_glass, awning]), windows.reshape(-1, 3)]
  )
  palette += haze * (sky - palette)

  shape = canvas.rect(x0, y0, x1, y1)
  yy, xx = canvas.coords(shape)
  u = (xx - x0 - margin) / pitch_x
  v = (yy - y0 - cornice - 0.3 * pitch_y) / pitch_y
  window_col = (u >= 0) & (frac(u) < fill_x) & (xx < x1 - margin + (1 - fill_x) * pitch_x)
  window_row = (v >= 0) & (frac(v) < fill_y) & (yy < y1 - shop - 0.2 * pitch_y)
  rows = np.clip(v.astype(np.int32), 0, n_rows - 1)
  cols = np.clip(u.astype(np.int32), 0, n_cols - 1)
  wall_or_pilaster = (pilasters & (frac((u + 0.5 * (1 + fill_x)) / 2) < 0.125)).astype(np.int32)
  material = np.where(window_row & window_col, 5 + rows * n_cols + cols, wall_or_pilaster)
  material[(yy < y0 + cornice)[:, 0]] = 2
  material[(yy > y1 - shop)[:, 0]] = np.where(frac((xx - x0) / (3 * pitch_x)) < 2 / 3, 3, 0)
  material[((yy > y1 - shop - 0.006) & (yy <= y1 - shop))[:, 0]] = 4
  shade = vertical_shade(yy, y0, y1 - y0, rng.uniform(-0.1, 0.3))
  canvas.paint(shape, np.take(palette, material, axis=0) * shade, BUILDING)


def draw_buildings(
  canvas: Canvas, rng: Random, view: View, sky: np.ndarray
) -> list[tuple[float, float, float, float]]:
  """A hazy back row for a skyline with depth, then the front row; returns front facades."""
  front = []
  for layer in ("back", "front"):
    x = -rng.uniform(0.0, 0.1)
    while x < 1.0:
      width = rng.uniform(0.1, 0.3)
      if layer == "back":
        top = view.horizon - rng.uniform(0.15, 0.42)
        draw = rng.random() < 0.6
      else:
        if rng.random() < 0.15:
          x += rng.uniform(0.02, 0.08)  # a gap through which the sky shows
        top = view.horizon - rng.uniform(0.06, 0.4)
        draw = True
      box = (x, top, x + width, view.horizon)
      if draw:
        haze = rng.uniform(0.25, 0.5) if layer == "back" else rng.uniform(0.0, 0.12)
        _draw_facade(canvas, rng, box, haze, sky)
        if layer == "front":
          front.append(box)
      x += width
  return front


def draw_ground(canvas: Canvas, rng: Random, noise: np.random.Generator, view: View):
  """Far sidewalk, cross street, main road in perspective and near sidewalks (all road class)."""
  asphalt = jitter(rng, np.full(3, rng.uniform(55, 120)), 6)
  pavement = pick(rng, _PAVEMENT_COLOURS)
  paint = jitter(rng, np.array([230, 230, 225]) if rng.random() < 0.8 else np.array([225, 190, 50]))
  tile = rng.uniform(4.0, 9.0)
  zebra = rng.random() < 0.4
  zebra_depth = rng.uniform(0.06, 0.12)
  shape = canvas.rect(0.0, view.horizon, 1.0, 1.0)
  yy, xx = canvas.coords(shape)
  t = np.maximum((yy - view.horizon) / (1.0 - view.horizon), 1e-3)
  left, right = view.road_edges(yy)
  # Perspective-rectified ground coordinates: lateral (metres-like) and inverse depth.
  lateral, depth = (xx - view.vanish_x) / t, 1.0 / t
  main = (xx >= left) & (xx <= right) & (t >= view.cross_street)
  road = main | ((t >= view.far_walk) & (t < view.cross_street))
  # Paving seams; the ones across depth only nearby, where they are more than a pixel apart.
  seams = (frac(lateral * tile) < 0.08) | ((frac(depth * 2 * tile) < 0.08) & (t > 0.35))
  middle = (left + right) / 2
  dashes = main & (np.abs(xx - middle) < 0.008 * t + 0.002) & (frac(depth * 0.7) < 0.5)
  kerb = (t >= view.cross_street) & (
    (np.abs(xx - left) < 0.006 * t + 0.002) | (np.abs(xx - right) < 0.006 * t + 0.002)
  )
  lines = dashes | kerb
  if zebra:
    z = (t >= view.cross_street) & (t < view.cross_street + zebra_depth)
    lines |= main & z & (frac(lateral * 6.0) < 0.5)
  # Materials: 0 asphalt, 1 paving, 2 seam, 3 road paint.
  material = np.where(road, 0, np.where(seams, 2, 1))
  material[lines] = 3
  palette = np.stack([asphalt, pavement, pavement * 0.8, paint])
  haze = (1.0 + 0.2 * (1.0 - t))[..., None]  # lightens the distance
  colour = np.take(palette, material, axis=0) * haze
  # Asphalt grain: texture, not colour, tells road from a grey car or wall.
  grain = noise.standard_normal(colour.shape[:2], dtype=np.float32) * rng.uniform(3.0, 9.0)
  canvas.paint(shape, colour + grain[..., None], ROAD)


def draw_pole(canvas: Canvas, rng: Random, view: View, x: float, y_foot: float, sign: bool):
  """A post, street lamp or sign post; `sign` mounts a sign (a thing) at its top."""
  m = view.metre(y_foot)
  height = rng.uniform(2.8, 4.0) * m if sign else rng.uniform(4.0, 7.5) * m
  # Real poles are 10-20 cm thick; clamp so they stay 1-3 px at 128 px.
  width = min(max(rng.uniform(0.1, 0.2) * m, 1 / 128), 3 / 128)
  colour = pick(rng, _POLE_COLOURS)
  top = y_foot - height
  shape = canvas.rect(x - width / 2, top, x + width / 2, y_foot, min_px=1)
  yy, _ = canvas.coords(shape)
  canvas.paint(shape, colour * vertical_shade(yy, top, height, 0.2), POLE)
  if sign:
    draw_sign(canvas, rng, x, top, rng.uniform(0.45, 0.8) * m)
  elif rng.random() < 0.5:  # street lamp: an arm and a head
    reach = rng.sign() * rng.uniform(0.6, 1.4) * m
    arm = canvas.rect(min(x, x + reach), top, max(x, x + reach), top + 0.7 * width, min_px=1)
    canvas.paint(arm, colour, POLE)
    head = canvas.ellipse(x + reach, top + width, 0.25 * m, 0.1 * m)
    canvas.paint(head, jitter(rng, np.array([220, 220, 200]), 20), POLE)


def draw_sign(canvas: Canvas, rng: Random, cx: float, cy: float, size: float):
  """A traffic or shop sign: bordered plate of one of five shapes with a simple symbol."""
  instance = canvas.new_thing(SIGN)
  kind = rng.integers(0, 5)
  fill_i = rng.choice(len(_SIGN_COLOURS))
  border_i = (fill_i + rng.integers(1, len(_SIGN_COLOURS))) % len(_SIGN_COLOURS)
  fill, border = jitter(rng, _SIGN_COLOURS[fill_i]), jitter(rng, _SIGN_COLOURS[border_i])
  symbol = jitter(rng, _SIGN_COLOURS[rng.choice(len(_SIGN_COLOURS))], 30)
  r = size / 2

  def plate(scale: float) -> Shape:
    q = r * scale
    if kind == 0:
      return canvas.ellipse(cx, cy, q, q)
    if kind == 1:
      return canvas.polygon([(cx - q, cy + 0.8 * q), (cx + q, cy + 0.8 * q), (cx, cy - q)])
    if kind == 2:
      return canvas.polygon([(cx - q, cy), (cx, cy - q), (cx + q, cy), (cx, cy + q)])
    if kind == 3:
      return canvas.rect(cx - q, cy - q, cx + q, cy + q)
    return canvas.rect(cx - 1.8 * q, cy - 0.6 * q, cx + 1.8 * q, cy + 0.6 * q)

  canvas.paint(plate(1.0), border, SIGN, instance)
  canvas.paint(plate(0.72), fill, SIGN, instance)
  canvas.paint(
    canvas.rect(cx - 0.35 * r, cy - 0.1 * r, cx + 0.35 * r, cy + 0.12 * r), symbol, SIGN, instance
  )


def draw_car(canvas: Canvas, rng: Random, view: View, x: float, y_foot: float, side: bool):
  """A car seen from the side (long, two wheels) or from behind (tyres, lights and plate)."""
  instance = canvas.new_thing(CAR)
  m = view.metre(y_foot)
  h = (rng.uniform(1.9, 2.3) if rng.random() < 0.15 else rng.uniform(1.35, 1.65)) * m
  length = h * (rng.uniform(2.5, 3.0) if side else rng.uniform(1.05, 1.3))
  x0, x1 = x - length / 2, x + length / 2
  body = pick(rng, _CAR_COLOURS, _CAR_COLOUR_WEIGHTS)
  glass = jitter(rng, np.array([50, 60, 75]) if rng.random() < 0.7 else np.array([150, 175, 200]))
  tyre = jitter(rng, np.array([32, 32, 34]), 6)
  belt = y_foot - 0.6 * h  # where the cabin sits on the body

  def paint(shape: Shape, colour: np.ndarray, shade: float = 0.0):
    if shade:
      yy, _ = canvas.coords(shape)
      colour = colour * vertical_shade(yy, y_foot - h, h, shade)
    canvas.paint(shape, colour, CAR, instance)

  if side:
    front = rng.sign()  # which end the bonnet is at; the cabin sits towards the back
    c = x - front * 0.06 * length
    cabin = [(c - 0.34 * length, belt), (c - 0.2 * length, y_foot - h)]
    cabin += [(c + 0.16 * length, y_foot - h), (c + 0.3 * length, belt)]
    chamfer = 0.08 * length
    paint(
      canvas.polygon(
        [
          (x0, belt + 0.1 * h),
          (x0 + chamfer, belt),
          (x1 - chamfer, belt),
          (x1, belt + 0.1 * h),
          (x1, y_foot - 0.15 * h),
          (x0, y_foot - 0.15 * h),
        ]
      ),
      body,
      0.4,
    )
    paint(canvas.polygon(cabin), body, 0.4)
    inset = [(px + (c - px) * 0.12, py + (belt - 0.5 * h - py) * 0.15) for px, py in cabin]
    paint(canvas.polygon(inset), glass)
    paint(canvas.rect(c - 0.02 * length, y_foot - h, c + 0.01 * length, belt), body * 0.9)
    for wx in (x0 + 0.2 * length, x1 - 0.2 * length):
      paint(canvas.ellipse(wx, y_foot - 0.19 * h, 0.19 * h, 0.19 * h), tyre)
      paint(canvas.ellipse(wx, y_foot - 0.19 * h, 0.09 * h, 0.09 * h), tyre + 110)
    lamp_x = x1 if front > 0 else x0
    lamp = canvas.rect(
      lamp_x - 0.03 * length, belt + 0.08 * h, lamp_x + 0.03 * length, belt + 0.18 * h
    )
    paint(lamp, jitter(rng, np.array([235, 225, 190])))
  else:
    paint(canvas.rect(x0, belt, x1, y_foot - 0.1 * h), body, 0.4)
    cabin = [(x0 + 0.06 * length, belt), (x0 + 0.18 * length, y_foot - h)]
    cabin += [(x1 - 0.18 * length, y_foot - h), (x1 - 0.06 * length, belt)]
    paint(canvas.polygon(cabin), body, 0.4)
    inset = [(px + (x - px) * 0.12, py + (belt - 0.45 * h - py) * 0.18) for px, py in cabin]
    paint(canvas.polygon(inset), glass)
    for tx in (x0 + 0.04 * length, x1 - 0.2 * length):
      paint(canvas.rect(tx, y_foot - 0.14 * h, tx + 0.16 * length, y_foot), tyre)
    light = jitter(
      rng, np.array([200, 30, 30]) if rng.random() < 0.8 else np.array([235, 225, 190])
    )
    for lx in (x0 + 0.03 * length, x1 - 0.19 * length):
      paint(canvas.rect(lx, belt + 0.08 * h, lx + 0.16 * length, belt + 0.2 * h), light)
    plate = canvas.rect(x - 0.16 * length, belt + 0.28 * h, x + 0.16 * length, belt + 0.38 * h)
    paint(plate, jitter(rng, np.array([230, 230, 220]), 10))


def draw_person(canvas: Canvas, rng: Random, view: View, x: float, y_foot: float):
  """A pedestrian: head with hair, torso, arms and legs in mid-stride."""
  instance = canvas.new_thing(PERSON)
  m = view.metre(y_foot)
  h = (rng.uniform(1.1, 1.4) if rng.random() < 0.15 else rng.uniform(1.55, 1.9)) * m
  skin = pick(rng, _SKIN_COLOURS, spread=8)
  hair = pick(rng, _HAIR_COLOURS, spread=10)
  shirt = random_colour(rng)
  trousers = pick(rng, _TROUSER_COLOURS) if rng.random() < 0.75 else random_colour(rng)
  stride = rng.uniform(0.0, 0.12) * h
  sleeve = shirt if rng.random() < 0.5 else skin
  bag = rng.random() < 0.25
  bag_colour = random_colour(rng)
  top, shoulder, hip = y_foot - h, y_foot - 0.82 * h, y_foot - 0.48 * h
  head_r = 0.065 * h

  def paint(shape: Shape, colour: np.ndarray):
    canvas.paint(shape, colour, PERSON, instance)

  for side in (-1.0, 1.0):
    hip_x, foot_x = x + side * 0.05 * h, x + side * (0.05 * h + stride)
    leg = [(hip_x - 0.05 * h, hip), (hip_x + 0.05 * h, hip)]
    leg += [(foot_x + 0.04 * h, y_foot), (foot_x - 0.04 * h, y_foot)]
    paint(canvas.polygon(leg), trousers * (0.85 if side < 0 else 1.0))
    arm_x = x + side * 0.13 * h
    arm = [(arm_x - 0.035 * h, shoulder), (arm_x + 0.035 * h, shoulder)]
    arm += [(arm_x + side * 0.04 * h + 0.03 * h, hip), (arm_x + side * 0.04 * h - 0.03 * h, hip)]
    paint(canvas.polygon(arm), sleeve * 0.9)
  torso = [(x - 0.11 * h, shoulder), (x + 0.11 * h, shoulder)]
  torso += [(x + 0.09 * h, hip + 0.03 * h), (x - 0.09 * h, hip + 0.03 * h)]
  shape = canvas.polygon(torso)
  yy, _ = canvas.coords(shape)
  paint(shape, shirt * vertical_shade(yy, shoulder, hip - shoulder, 0.25))
  paint(canvas.rect(x - 0.025 * h, top + 1.8 * head_r, x + 0.025 * h, shoulder + 0.01 * h), skin)
  paint(canvas.ellipse(x, top + head_r, head_r, 1.1 * head_r), skin)
  paint(canvas.ellipse(x, top + 0.7 * head_r, 1.05 * head_r, 0.75 * head_r), hair)
  if bag:
    bx = x + rng.sign() * 0.16 * h
    paint(canvas.rect(bx - 0.06 * h, hip - 0.1 * h, bx + 0.06 * h, hip + 0.08 * h), bag_colour)

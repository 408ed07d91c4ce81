"""Colours for class maps and the overlays that the loop, `predict` and notebooks draw."""

import numpy as np

VOID_COLOUR = (0, 0, 0)


def palette(num_classes: int) -> np.ndarray:
  """A fixed, distinguishable colour per class (PASCAL VOC's bit-interleaved scheme).

  Class i gets VOC's colour i + 1: VOC's colour 0 is black, which is kept for void alone.

  Returns:
    u8[256,3]; entries past `num_classes` continue the scheme, entry 255 (void) is black.
  """
  del num_classes  # the scheme is the same for every class count, so colours stay stable
  ids = np.arange(1, 257)
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


def instance_colours(ids: np.ndarray) -> np.ndarray:
  """A stable, well-spread colour per instance id (golden-ratio hues): `ids: int[N]` -> u8[N,3]."""
  hue = (ids * 0.618033988749895) % 1.0
  # HSV -> RGB with full saturation and value 0.9.
  k = (np.array([5.0, 3.0, 1.0]) + hue[:, None] * 6) % 6
  rgb = 0.9 * (1 - np.clip(np.minimum(k, 4 - k), 0, 1))
  return (rgb * 255).round().astype(np.uint8)


def instance_overlay(
  image: np.ndarray,
  instances: np.ndarray,
  *,
  label_divisor: int = 1000,
  ignore_index: int | None = None,
  alpha: float = 0.55,
) -> np.ndarray:
  """Blends one colour per instance of `instances: int[H,W]` (class * label_divisor + instance,
  0 or instance 0 for none) over `image: u8[H,W,3]`, with each instance's outline in white."""
  ids = np.asarray(instances)
  drawn = (ids % label_divisor) > 0
  if ignore_index is not None:
    drawn &= ids // label_divisor != ignore_index
  unique, inverse = np.unique(np.where(drawn, ids, 0), return_inverse=True)
  colours = instance_colours(unique)[inverse.reshape(ids.shape)].astype(np.float32)
  blended = (1 - alpha) * image.astype(np.float32) + alpha * colours
  out = np.where(drawn[..., None], blended, image.astype(np.float32))
  edge = np.zeros_like(drawn)
  edge[1:] |= ids[1:] != ids[:-1]
  edge[:, 1:] |= ids[:, 1:] != ids[:, :-1]
  out[edge & drawn] = 255
  return out.round().astype(np.uint8)


def label_detections(
  image: np.ndarray,
  boxes: np.ndarray,
  names: list[str],
  scores: np.ndarray,
  *,
  ids: np.ndarray | None = None,
) -> np.ndarray:
  """Draws each detection's box and "name score" over `image: u8[H,W,3]`.

  `boxes: f[N,4]` (x1, y1, x2, y2 pixels), `names` and `scores: f[N]` one per box; `ids: int[N]`
  picks each box's colour as `instance_colours` does (default: 1..N).
  """
  from PIL import Image, ImageDraw

  picture = Image.fromarray(image)
  draw = ImageDraw.Draw(picture)
  colours = instance_colours(np.arange(1, len(boxes) + 1) if ids is None else np.asarray(ids))
  for box, name, score, colour in zip(boxes, names, scores, colours, strict=True):
    x1, y1, x2, y2 = (float(v) for v in box)
    draw.rectangle(
      (x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)), outline=tuple(int(c) for c in colour)
    )
    text = f"{name} {score:.2f}"
    left, top, right, bottom = draw.textbbox((x1, y1), text)
    y = max(0.0, y1 - (bottom - top) - 2)
    draw.rectangle((x1, y, x1 + right - left + 2, y + bottom - top + 2), fill=(0, 0, 0))
    draw.text((x1 + 1, y), text, fill=(255, 255, 255))
  return np.asarray(picture)


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


def plot_confusion(confmat: np.ndarray, class_names, *, ax=None, annotate: bool = True):
  """Heatmap of a confusion matrix normalised by row: each true class's pixels, by prediction.

  Args:
    confmat: int[C,C], rows = truth, columns = prediction.
    class_names: C names.
    ax: matplotlib axes to draw on; a new figure's by default.
    annotate: write each cell's share in it.

  Returns:
    The axes. A class absent from the truth has an empty row.
  """
  import matplotlib.pyplot as plt

  from segjax.metrics.semantic import safe_divide

  c = len(class_names)
  if ax is None:
    _, ax = plt.subplots(figsize=(2 + 0.6 * c, 1 + 0.6 * c))
  shares = safe_divide(confmat, np.sum(confmat, axis=1, keepdims=True))
  image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
  ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
  ax.set_xticks(range(c), class_names, rotation=45, ha="right")
  ax.set_yticks(range(c), class_names)
  ax.set(xlabel="predicted", ylabel="true", title="confusion (rows sum to 1)")
  if annotate:
    for (row, col), share in np.ndenumerate(shares):
      if not np.isnan(share):
        colour = "white" if share > 0.5 else "black"
        ax.text(col, row, f"{share:.2f}", ha="center", va="center", color=colour, fontsize=8)
  return ax


def plot_comparisons(
  images, labels, predictions, class_names, *, titles=None, ignore_index: int = 255
):
  """A figure of `comparison_row`s, one per example, titled, with a legend of class colours.

  Args:
    images: u8[N,H,W,3].
    labels: int[N,H,W] ground truth, `ignore_index` for void.
    predictions: int[N,H,W].
    class_names: C names, for the legend.
    titles: N row titles (e.g. an id and a score).
    ignore_index: void label.

  Returns:
    The matplotlib figure.
  """
  import matplotlib.pyplot as plt
  from matplotlib.patches import Patch

  n, w = len(labels), np.shape(labels)[2]
  c = len(class_names)
  fig, axes = plt.subplots(n, 1, figsize=(10, 2.6 * n + 0.6), squeeze=False)
  # comparison_row puts 2-pixel gaps between its 4 panels.
  centres = [(w - 1) / 2 + i * (w + 2) for i in range(4)]
  for i, ax in enumerate(axes[:, 0]):
    row = comparison_row(images[i], labels[i], predictions[i], c, ignore_index=ignore_index)
    ax.imshow(row, interpolation="nearest")
    ax.set_xticks(centres, ["image", "truth", "prediction", "errors (red)"])
    ax.set_yticks([])
    if titles is not None:
      ax.set_title(titles[i], loc="left")
  colours = palette(c)[:c] / 255
  handles = [Patch(color=rgb, label=name) for rgb, name in zip(colours, class_names, strict=True)]
  fig.legend(handles=handles, loc="lower center", ncol=min(c, 8), frameon=False)
  fig.tight_layout(rect=(0, 0.6 / fig.get_figheight(), 1, 1))
  return fig


def panoptic_colours(
  panoptic: np.ndarray,
  *,
  num_classes: int,
  things,
  label_divisor: int = 1000,
  ignore_index: int = 255,
) -> np.ndarray:
  """Colours of a panoptic map `panoptic: int[H,W]` (class * label_divisor + instance) -> u8[H,W,3].

  Stuff takes its class's `palette` colour; a thing instance takes it shifted by up to ±40 per
  channel (the same for the same id, far apart for consecutive instances); a thing's instance 0
  takes the class colour. Void (class `ignore_index` or not below `num_classes`) is black.
  """
  ids = np.asarray(panoptic, np.int64)
  unique, inverse = np.unique(ids, return_inverse=True)
  classes, instances = unique // label_divisor, unique % label_divisor
  void = (classes < 0) | (classes >= num_classes) | (classes == ignore_index)
  jittered = np.isin(classes, list(things)) & (instances > 0)
  # Golden-ratio steps around a circle of hues: consecutive instances land far apart.
  turn = (instances * 0.618033988749895)[:, None] + np.arange(3) / 3
  shift = np.where(jittered[:, None], 40 * np.cos(2 * np.pi * turn), 0)
  colours = palette(num_classes)[np.where(void, 255, classes)] + shift.round()
  return np.clip(colours, 0, 255).astype(np.uint8)[inverse.reshape(ids.shape)]


def panoptic_overlay(
  image: np.ndarray,
  panoptic: np.ndarray,
  *,
  num_classes: int,
  things,
  label_divisor: int = 1000,
  ignore_index: int = 255,
  alpha: float = 0.55,
) -> np.ndarray:
  """Blends `panoptic_colours` over `image: u8[H,W,3]`, with the boundaries between segments in
  white; void stays the image. All of a stuff class's pixels are one segment.

  Returns:
    u8[H,W,3].
  """
  ids = np.asarray(panoptic, np.int64)
  classes = ids // label_divisor
  void = (classes < 0) | (classes >= num_classes) | (classes == ignore_index)
  stuff = ~np.isin(classes, list(things))
  segments = np.where(void, -1, np.where(stuff, classes * label_divisor, ids))
  colours = panoptic_colours(
    ids,
    num_classes=num_classes,
    things=things,
    label_divisor=label_divisor,
    ignore_index=ignore_index,
  ).astype(np.float32)
  blended = (1 - alpha) * image.astype(np.float32) + alpha * colours
  out = np.where(void[..., None], image.astype(np.float32), blended)
  # Each boundary is drawn on its lower or right pixel, or on the other one where that is void.
  edge = np.zeros_like(void)
  down = segments[1:] != segments[:-1]
  edge[1:] |= down & ~void[1:]
  edge[:-1] |= down & void[1:]
  right = segments[:, 1:] != segments[:, :-1]
  edge[:, 1:] |= right & ~void[:, 1:]
  edge[:, :-1] |= right & void[:, 1:]
  out[edge] = 255
  return out.round().astype(np.uint8)

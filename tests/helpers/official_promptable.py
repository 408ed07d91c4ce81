"""The references: the official `SamPredictor` and `SamAutomaticMaskGenerator` (segment_anything
1.0) on a tiny official SAM with random weights, its converted `(config, variables)`, and a real
photograph.

Both official modules import torchvision, which is not importable next to this CPU-only torch. A
SHIM installed in `sys.modules` STANDS IN FOR TORCHVISION, implementing exactly what they use:
`torchvision.transforms.functional.to_pil_image` and `resize` on PIL images (the numpy path of
`ResizeLongestSide.apply_image`; the torch path, `apply_image_torch`, calls neither), and
`torchvision.ops.boxes.batched_nms` and `box_area` with torchvision's semantics. The official
modules are then imported under the bare package of `official_sam.py`.
"""

import importlib
import importlib.util
import sys
import types

import matplotlib.cbook
import numpy as np
import official_sam  # puts the bare `segment_anything` package in sys.modules
import torch
from PIL import Image

from segjax.convert.sam import load


def to_pil_image(image: np.ndarray) -> Image.Image:
  """A u8[H,W,3] array as an RGB PIL image."""
  if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.shape[-1] == 3):
    raise TypeError("the shim converts u8[H,W,3] numpy arrays only")
  return Image.fromarray(image, "RGB")


def resize(image: Image.Image, size) -> Image.Image:
  """torchvision's `resize(pil_image, (h, w))`: PIL's bilinear resize to w x h."""
  if not isinstance(image, Image.Image) or len(size) != 2:
    raise TypeError("the shim resizes PIL images to an (h, w) size only")
  return image.resize((int(size[1]), int(size[0])), Image.Resampling.BILINEAR)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
  return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def batched_nms(boxes, scores, idxs, iou_threshold: float) -> torch.Tensor:
  """Greedy NMS per category, as torchvision's CPU kernel: boxes visited by score, descending
  (stable sort), a box suppressed when its IoU with a kept box of its category is > the
  threshold (a NaN IoU, of two empty boxes, suppresses nothing); the kept indices by score,
  descending."""
  boxes, scores, idxs = boxes.float().numpy(), scores.float().numpy(), idxs.numpy()
  order = np.argsort(-scores, kind="stable")
  areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
  suppressed = np.zeros(len(boxes), bool)
  keep = []
  for a, i in enumerate(order):
    if suppressed[i]:
      continue
    keep.append(i)
    rest = order[a + 1 :]
    lt = np.maximum(boxes[i, :2], boxes[rest, :2])
    rb = np.minimum(boxes[i, 2:], boxes[rest, 2:])
    wh = np.maximum(rb - lt, 0)
    inter = wh[:, 0] * wh[:, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
      iou = inter / (areas[i] + areas[rest] - inter)
    suppressed[rest[(iou > iou_threshold) & (idxs[rest] == idxs[i])]] = True
  return torch.as_tensor(np.array(keep, np.int64))


def _install_torchvision_shim() -> None:
  functional = types.ModuleType("torchvision.transforms.functional")
  functional.to_pil_image, functional.resize = to_pil_image, resize
  ops_boxes = types.ModuleType("torchvision.ops.boxes")
  ops_boxes.batched_nms, ops_boxes.box_area = batched_nms, box_area
  modules = {
    "torchvision": types.ModuleType("torchvision"),
    "torchvision.transforms": types.ModuleType("torchvision.transforms"),
    "torchvision.transforms.functional": functional,
    "torchvision.ops": types.ModuleType("torchvision.ops"),
    "torchvision.ops.boxes": ops_boxes,
  }
  for name, module in modules.items():
    parent, _, child = name.rpartition(".")
    if parent:
      setattr(modules[parent], child, module)
    sys.modules[name] = module


if "torchvision" not in sys.modules:
  _install_torchvision_shim()

SamPredictor = importlib.import_module("segment_anything.predictor").SamPredictor
SamAutomaticMaskGenerator = importlib.import_module(
  "segment_anything.automatic_mask_generator"
).SamAutomaticMaskGenerator
ResizeLongestSide = importlib.import_module("segment_anything.utils.transforms").ResizeLongestSide
amg = importlib.import_module("segment_anything.utils.amg")
one_thread = official_sam.one_thread

# Low-res masks are 28x28.
CONFIG = official_sam.CONFIG


def models(seed: int = 0):
  """`(official Sam, segjax config, segjax variables)` of the same random weights."""
  reference = official_sam.randomize(official_sam.build(CONFIG), seed)
  config, variables = load(reference.state_dict())
  assert config == CONFIG
  return reference, config, variables


def photo() -> np.ndarray:
  """Grace Hopper, u8[600,512,3], from matplotlib's sample data: not square, larger than the
  model's input."""
  path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
  return np.asarray(Image.open(path).convert("RGB"))

"""SAM's geometry between an image and the model's square input, as the official
`ResizeLongestSide` (numpy path) and `Sam.postprocess_masks`: the image resized so that its longer
side is the input size (then padded at the bottom right), prompts scaled alike, and mask logits
carried back to the image's size."""

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image


def resized_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
  """`(h, w)` of a `height` x `width` image resized so that its longer side is `long_side`."""
  scale = long_side / max(height, width)
  return int(height * scale + 0.5), int(width * scale + 0.5)


def resize_image(image: np.ndarray, long_side: int) -> np.ndarray:
  """`image: u8[H,W,3]` -> u8[h,w,3] with `(h, w) = resized_shape(H, W, long_side)`.

  PIL's bilinear resize of the uint8 image (low-pass filtered when shrinking), which is what the
  official `apply_image` runs through torchvision.
  """
  h, w = resized_shape(*image.shape[:2], long_side)
  return np.asarray(Image.fromarray(image).resize((w, h), Image.Resampling.BILINEAR))


def scale_coords(coords, original_size: tuple[int, int], long_side: int) -> np.ndarray:
  """`coords: f[...,2]` xy in pixels of an image of `original_size` (h, w) -> f64[...,2] in
  pixels of the resized image (each axis scaled by its new over old size)."""
  (old_h, old_w), (new_h, new_w) = original_size, resized_shape(*original_size, long_side)
  return np.asarray(coords, np.float64) * np.array([new_w / old_w, new_h / old_h])


def scale_boxes(boxes, original_size: tuple[int, int], long_side: int) -> np.ndarray:
  """`boxes: f[...,4]` (x0, y0, x1, y1) in pixels of the image -> f64[...,4] in the resized
  image."""
  corners = np.reshape(boxes, (-1, 2, 2))
  return scale_coords(corners, original_size, long_side).reshape(np.shape(boxes))


def postprocess_masks(
  low_res, input_size: tuple[int, int], original_size: tuple[int, int], image_size: int
) -> jax.Array:
  """Mask logits `low_res: f[...,m,m]` on the padded input -> f32[...,H,W] on the image.

  Bilinear (half-pixel centres, no antialiasing: torch's `F.interpolate(..., align_corners=False)`)
  to `image_size` square, cropped to the resized image's `input_size`, bilinear to the
  `original_size` (H, W). Sizes are static under `jax.jit`.
  """
  lead = low_res.shape[:-2]
  x = jax.image.resize(
    low_res.astype(jnp.float32), (*lead, image_size, image_size), "bilinear", antialias=False
  )
  x = x[..., : input_size[0], : input_size[1]]
  return jax.image.resize(x, (*lead, *original_size), "bilinear", antialias=False)

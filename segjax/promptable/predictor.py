"""Promptable segmentation of one image, as the official `SamPredictor`: `set_image` encodes the
image once, then `predict` decodes points, a box and a mask prompt cheaply, at the image's size.

Compilation: the encoder compiles once per model, whatever the image's size: the resized image is
zero-padded on the host and its size passed as data. The decoder compiles once per prompt form:
number of points, box or not, mask or not (both multimask settings share one program). Padding the
points to a fixed count with label -1 would compile once for any number of clicks but change the
masks: as in the official model, a padding point enters the decoder's attention. Upsampling the
masks compiles per image size.
"""

import functools
import os
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from segjax.convert.sam import load
from segjax.models.sam import Sam, SamConfig, preprocess
from segjax.promptable.transforms import postprocess_masks, resize_image, scale_boxes, scale_coords

# Logits above it are inside a mask (the official `Sam.mask_threshold`).
MASK_THRESHOLD = 0.0


@functools.partial(jax.jit, static_argnames="model")
def _encode(model: Sam, variables, image, size):
  """`image: u8[I,I,3]`, a resized image zero-padded to the input size I, `size: i32[2]` its
  (h, w) before padding -> f32[1,S,S,D]."""
  side = model.config.image_size
  x = preprocess(image[None], side)
  inside = (jnp.arange(side)[:, None] < size[0]) & (jnp.arange(side) < size[1])
  x = jnp.where(inside[:, :, None], x, 0.0)  # `preprocess` pads with zeros after normalising
  return model.apply(variables, x, method=Sam.encode_image)


@functools.partial(jax.jit, static_argnames="model")
def _decode(model: Sam, variables, embedding, points, labels, boxes, masks):
  """`Sam.decode` of one prompt set (a prompt that is None is absent) as `{multimask_output:
  (low_res_masks, iou_predictions)}` for both settings: one program, in which XLA computes the
  decoder once."""
  return {
    multimask: model.apply(
      variables, embedding, points, labels, boxes, masks, multimask, method=Sam.decode
    )
    for multimask in (True, False)
  }


_postprocess = jax.jit(postprocess_masks, static_argnums=(1, 2, 3))


class SamPredictor:
  """SAM on one image at a time.

  Attributes:
    config: the model's sizes; `config.image_size` is the side of its square input.
    model: the `Sam` module; `variables` its variables (on the default device).
    original_size, input_size: (h, w) of the set image and of it resized for the model.
  """

  def __init__(self, config: SamConfig, variables: Mapping, *, dtype: jnp.dtype = jnp.float32):
    """`variables` as `segjax.convert.sam.load` returns them; `dtype` the compute dtype."""
    self.config = config
    self.model = Sam(config, dtype)
    self.variables = jax.device_put(variables)
    self.reset_image()

  @classmethod
  def from_checkpoint(cls, path: str | os.PathLike, **kwargs) -> "SamPredictor":
    """A predictor for an official SAM checkpoint file (`segjax.convert.sam.load`)."""
    return cls(*load(path), **kwargs)

  @classmethod
  def from_run(
    cls, workdir: str | os.PathLike, checkpoint: str = "best", **kwargs
  ) -> "SamPredictor":
    """A predictor for a segjax run of the `promptable` task (trained or fine-tuned SAM).

    Args:
      workdir: the run's directory.
      checkpoint: "best", "latest" or a step number.
      kwargs: as the constructor's; `dtype` defaults to the run's `config.model.dtype`.
    """
    from segjax.data import open_dataset
    from segjax.errors import InputError
    from segjax.models.sam.interactive import to_sam
    from segjax.train.loop import build, load_config, restore_state

    config = load_config(workdir)
    if config.task != "promptable":
      raise InputError(
        f"{workdir} is a run of task {config.task!r}; SamPredictor needs a promptable run."
      )
    exp = build(config, open_dataset(config.data, config.eval.split))
    _, state = restore_state(exp, str(workdir), str(checkpoint))
    variables = to_sam({"params": state.params, "batch_stats": state.batch_stats})
    kwargs.setdefault("dtype", jnp.dtype(config.model.dtype))
    return cls(exp.model.config, jax.device_get(variables), **kwargs)

  @property
  def is_image_set(self) -> bool:
    return self._embedding is not None

  def reset_image(self) -> None:
    """Forgets the set image."""
    self._embedding = None
    self.original_size = self.input_size = None

  def set_image(self, image: np.ndarray) -> None:
    """Encodes `image: u8[H,W,3]` (RGB) for the following `predict` calls."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
      raise ValueError(
        f"set_image takes an RGB image u8[H,W,3]; got {image.dtype} of shape {image.shape}."
      )
    self.reset_image()
    side = self.config.image_size
    resized = resize_image(image, side)
    h, w = resized.shape[:2]
    padded = np.zeros((side, side, 3), np.uint8)
    padded[:h, :w] = resized
    self._embedding = _encode(self.model, self.variables, padded, np.array([h, w], np.int32))
    self.original_size, self.input_size = image.shape[:2], (h, w)

  def get_image_embedding(self) -> jax.Array:
    """The set image's embedding, f32[1,S,S,D] (S = `config.embedding_size`)."""
    self._check_image_set()
    return self._embedding

  def predict(
    self,
    point_coords: np.ndarray | None = None,
    point_labels: np.ndarray | None = None,
    box: np.ndarray | None = None,
    mask_input: np.ndarray | None = None,
    multimask_output: bool = True,
    return_logits: bool = False,
  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Masks of the set image for one prompt set.

    Args:
      point_coords: f[N,2] xy in pixels of the original image, or None.
      point_labels: i[N]: 1 positive, 0 negative; required with `point_coords`.
      box: f[4] (x0, y0, x1, y1) in pixels of the original image, or None.
      mask_input: f[1,m,m] or f[m,m] mask logits, m = 4·`config.embedding_size` (256 for the
        published models): a `low_res_logits` of a previous call, or None.
      multimask_output: K = 3 masks for an ambiguous prompt, else K = 1.
      return_logits: return the masks' logits instead of thresholding them at 0.

    Returns:
      `(masks bool[K,H,W] (f32 logits with return_logits), iou_predictions f32[K],
      low_res_logits f32[K,m,m])` at the original image size H, W.
    """
    self._check_image_set()
    side, m = self.config.image_size, 4 * self.config.embedding_size
    points = labels = boxes = masks = None
    if point_coords is not None:
      if point_labels is None:
        raise ValueError("point_labels must be given with point_coords.")
      point_coords, point_labels = np.asarray(point_coords), np.asarray(point_labels)
      if point_coords.ndim != 2 or point_coords.shape[1] != 2:
        raise ValueError(f"point_coords must be f[N,2]; got shape {point_coords.shape}.")
      if point_labels.shape != point_coords.shape[:1]:
        raise ValueError(
          f"point_labels must be i[N] with N = {len(point_coords)}; got shape {point_labels.shape}."
        )
      points = scale_coords(point_coords, self.original_size, side)[None].astype(np.float32)
      labels = point_labels[None].astype(np.int32)
    elif point_labels is not None:
      raise ValueError("point_labels were given without point_coords.")
    if box is not None:
      if np.shape(box) != (4,):
        raise ValueError(f"box must be f[4] (x0, y0, x1, y1); got shape {np.shape(box)}.")
      boxes = scale_boxes(box, self.original_size, side)[None].astype(np.float32)
    if mask_input is not None:
      if np.shape(mask_input) not in ((1, m, m), (m, m)):
        raise ValueError(f"mask_input must be f[1,{m},{m}]; got shape {np.shape(mask_input)}.")
      masks = np.asarray(mask_input, np.float32).reshape(1, m, m, 1)

    decoded = _decode(self.model, self.variables, self._embedding, points, labels, boxes, masks)
    low_res, iou = decoded[bool(multimask_output)]
    upsampled = _postprocess(low_res[0], self.input_size, self.original_size, side)
    if not return_logits:
      upsampled = upsampled > MASK_THRESHOLD
    return np.asarray(upsampled), np.asarray(iou[0]), np.asarray(low_res[0])

  def _check_image_set(self) -> None:
    if not self.is_image_set:
      raise RuntimeError("No image is set: call set_image(image) first.")

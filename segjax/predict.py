"""Predictions for image files at their own size: a label PNG and a colour overlay per image."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image, UnidentifiedImageError

from segjax import config as config_lib
from segjax.data.builders.folder import IMAGE_SUFFIXES
from segjax.data.transforms import fit_size, resize_labels
from segjax.errors import InputError
from segjax.train.evaluate import inference_fn

DETECTION_KEYS = ("boxes", "scores", "labels", "valid")


def list_images(path: str | pathlib.Path) -> list[pathlib.Path]:
  """`path` itself if it is an image file, else the images directly inside the folder `path`."""
  path = pathlib.Path(path).expanduser()
  if path.is_file():
    return [path]
  if not path.is_dir():
    raise InputError(f"--input={str(path)!r} is neither an image file nor a folder.")
  images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
  if not images:
    raise InputError(f"--input={str(path)!r} holds no images ({', '.join(IMAGE_SUFFIXES)}).")
  return images


def make_predictor(exp, state):
  """`image: u8[H,W,3]` -> `i32[H,W]` (class ids, or the ids of instance and panoptic tasks), in
  the inference mode of `config.eval`.

  The image is resized (bilinear) to the eval size (`config.eval.image_size`, else the training
  size), or with `config.eval.resize="pad"` fitted inside it and padded, the padding cropped off
  the result. Semantic logits are resized back (bilinear) before the argmax; other tasks'
  per-pixel predictions are resized back nearest, so either follows the original pixel grid.
  """
  size_hw = config_lib.eval_image_size(exp.config)
  outputs_fn = inference_fn(exp.model, exp.config)

  @jax.jit
  def run(state, image):
    outputs = outputs_fn(state, exp.task.inputs({"image": image[None]}))
    if exp.task.per_pixel_logits:
      return outputs["logits"][0], {}
    detections = {k: outputs[k][0] for k in DETECTION_KEYS if k in outputs}
    return exp.task.predict(outputs)[0], detections

  def predict(image: np.ndarray, out_hw: tuple[int, int]) -> tuple[np.ndarray, dict]:
    """-> (`i32[H,W]` at `out_hw`, detections with boxes in `out_hw` pixels, or {})."""
    pad = exp.config.eval.resize == "pad"
    fitted = fit_size(image.shape[:2], size_hw) if pad else size_hw
    resized = np.zeros((*size_hw, 3), np.uint8)
    resized[: fitted[0], : fitted[1]] = Image.fromarray(image).resize(
      fitted[::-1], Image.Resampling.BILINEAR
    )
    result, detections = jax.device_get(run(state, jax.device_put(resized)))
    result = result[: fitted[0], : fitted[1]]
    if detections:
      scale = np.asarray([out_hw[1], out_hw[0]] * 2, np.float32) / ([fitted[1], fitted[0]] * 2)
      detections = {**detections, "boxes": detections["boxes"] * scale}
    if result.ndim == 2:
      return resize_labels(result, out_hw), detections
    upsampled = jax.image.resize(
      result, (*out_hw, result.shape[-1]), method="bilinear", antialias=False
    )
    return np.asarray(jnp.argmax(upsampled, axis=-1)), detections

  return predict


def predict_files(exp, state, inputs: list[pathlib.Path], output: str | pathlib.Path) -> None:
  """Writes `<stem>_overlay.png` and the task's prediction files for every input:
  `<stem>_labels.png` (class ids; instance tasks: class * 1000 + instance, 16-bit), or for
  panoptic tasks the COCO panoptic format (`panoptic/<stem>.png` and `panoptic.json`)."""
  output = pathlib.Path(output)
  output.mkdir(parents=True, exist_ok=True)
  predict = make_predictor(exp, state)

  def predictions():
    for path in inputs:
      try:
        with Image.open(path) as file:
          image = np.asarray(file.convert("RGB"))
      except (UnidentifiedImageError, OSError) as error:
        raise InputError(f"{path} cannot be read as an image ({error}).") from error
      labels, detections = predict(image, image.shape[:2])
      drawn = exp.task.overlay(image, labels, detections)
      Image.fromarray(drawn).save(output / f"{path.stem}_overlay.png")
      yield path.stem, labels

  exp.task.write_predictions(output, predictions())

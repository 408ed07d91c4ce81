"""Prediction of one image at the eval size: padded inputs keep the image's aspect ratio."""

import jax
import numpy as np

from segjax.data import open_dataset
from segjax.predict import make_predictor
from segjax.train.evaluate import inference_fn
from segjax.train.loop import build, load_config, restore_state


def test_padded_prediction_is_the_models_labels_on_the_zero_padded_image(tiny_run_workdir):
  config = load_config(tiny_run_workdir)
  config.eval.resize = "pad"
  exp = build(config, open_dataset(config.data, "train"))
  _, state = restore_state(exp, tiny_run_workdir, "latest")
  # 20x32 fits the 32x32 eval size unscaled: the model sees it with rows 20-31 black.
  image = np.random.default_rng(0).integers(0, 255, (20, 32, 3), dtype=np.uint8)
  labels, _ = make_predictor(exp, state)(image, (20, 32))

  padded = np.zeros((1, 32, 32, 3), np.uint8)
  padded[0, :20] = image
  logits = inference_fn(exp.model, exp.config)(state, exp.task.inputs({"image": padded}))
  expected = np.argmax(jax.device_get(logits["logits"])[0, :20], axis=-1)
  assert labels.shape == (20, 32)
  np.testing.assert_array_equal(labels, expected)

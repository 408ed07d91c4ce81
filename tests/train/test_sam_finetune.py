"""Fine-tuning official SAM weights through the CLI: `experiments/sam_vit_b_finetune.py:tiny` with
an official-format checkpoint (the `segment_anything` package's model, random weights) on a folder
data set with instance masks."""

import json
import pathlib

import jax
import numpy as np
import pytest
from PIL import Image
from references import require_official_sam

from segjax.convert.sam import load
from segjax.errors import InputError
from segjax.models.sam.interactive import InteractiveSam
from segjax.promptable import SamPredictor

torch = require_official_sam()
import official_sam  # noqa: E402


def write_objects(root: pathlib.Path, images: int = 4, size=(56, 64)) -> pathlib.Path:
  """A folder data set of noisy images with 1-3 bright rectangles each, every one an instance of
  class 1 ("object")."""
  root.mkdir()
  (root / "classes.json").write_text(json.dumps(["background", "object"]))
  rng = np.random.default_rng(0)
  for split in ("train", "validation"):
    for folder in ("images", "masks", "instances"):
      (root / split / folder).mkdir(parents=True)
    for i in range(images):
      image = rng.integers(0, 80, (*size, 3), dtype=np.uint8)
      instances = np.zeros(size, np.uint8)
      for k in range(1, rng.integers(2, 4) + 1):
        y, x = rng.integers(0, size[0] - 16), rng.integers(0, size[1] - 16)
        h, w = rng.integers(8, 16, size=2)
        instances[y : y + h, x : x + w] = k
        image[y : y + h, x : x + w] = rng.integers(150, 255, 3)
      Image.fromarray(image).save(root / split / "images" / f"{i}.png")
      Image.fromarray((instances > 0).astype(np.uint8)).save(root / split / "masks" / f"{i}.png")
      Image.fromarray(instances).save(root / split / "instances" / f"{i}.png")
  return root


def official_checkpoint(path: pathlib.Path, model_kwargs) -> pathlib.Path:
  """The official SAM of the sizes in `model_kwargs`, random weights, saved as `torch.save`
  does."""
  config = InteractiveSam(**model_kwargs).config
  torch.save(official_sam.randomize(official_sam.build(config), seed=0).state_dict(), path)
  return path


@pytest.mark.slow
def test_fine_tuning_an_official_checkpoint_trains_the_decoder_and_keeps_the_encoder(
  cli_train, experiment, tmp_path
):
  kwargs = experiment("sam_vit_b_finetune").get_config("tiny").model.kwargs
  checkpoint = official_checkpoint(tmp_path / "sam_tiny.pth", dict(kwargs))
  data = write_objects(tmp_path / "objects")
  workdir, records = cli_train(
    "sam_vit_b_finetune",
    6,
    f"--config.model.pretrained={checkpoint}",
    f"--config.data.root={data}",
  )
  assert [r for r in records if r["split"] == "validation"][-1]["objects"] > 0

  predictor = SamPredictor.from_run(workdir, "latest")
  _, released = load(checkpoint)
  trained = jax.device_get(predictor.variables)
  same = lambda a, b: jax.tree.all(jax.tree.map(np.array_equal, a, b))
  assert same(trained["params"]["image_encoder"], released["params"]["image_encoder"])
  assert same(trained["buffers"], released["buffers"])
  decoder = zip(
    jax.tree.leaves(trained["params"]["mask_decoder"]),
    jax.tree.leaves(released["params"]["mask_decoder"]),
    strict=True,
  )
  assert not all(np.array_equal(a, b) for a, b in decoder)

  # The run's predictor clicks like any other.
  predictor.set_image(np.asarray(Image.open(data / "validation/images/0.png")))
  masks, scores, logits = predictor.predict(np.array([[20.0, 20.0]]), np.array([1]))
  assert masks.shape == (3, 56, 64) and scores.shape == (3,) and logits.shape == (3, 32, 32)


def test_a_checkpoint_of_other_sizes_names_the_model_kwargs_to_set(experiment, tmp_path):
  kwargs = dict(experiment("sam_vit_b_finetune").get_config("tiny").model.kwargs)
  checkpoint = official_checkpoint(tmp_path / "sam_tiny.pth", kwargs)
  model = InteractiveSam(**{**kwargs, "encoder_depth": 3, "global_attention_indexes": (2,)})
  with pytest.raises(
    InputError,
    match=r"sam_tiny\.pth holds a SAM of other sizes than config\.model's: set "
    r"config\.model\.kwargs\.encoder_depth=2, "
    r"config\.model\.kwargs\.global_attention_indexes=\(1,\)",
  ):
    model.pretrained_variables(checkpoint)

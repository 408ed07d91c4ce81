"""Bad input outside the data files: each gets one error that names the key and the way out."""

import types

import pytest

from segjax.config import base_config, validate
from segjax.errors import InputError
from segjax.train import sharding


def test_a_model_unknown_to_the_registry_suggests_the_closest():
  config = base_config()
  config.model.name = "unet_tiniest"
  with pytest.raises(
    InputError, match=r"config.model.name='unet_tiniest' is not one of .*unet_tiny"
  ):
    validate(config)


def test_a_batch_that_does_not_divide_over_the_devices_names_the_key_and_a_fix():
  mesh = types.SimpleNamespace(shape={"data": 4, "model": 2})  # 8 devices, 4 replicas
  with pytest.raises(InputError, match=r"config.data.batch_size=6 .* 4 devices .* multiple of 4"):
    sharding.check_batch_size(6, mesh, "data.batch_size")
  sharding.check_batch_size(8, mesh, "data.batch_size")


@pytest.mark.parametrize(
  "key, value, expected",
  [
    ("train.on_nonfinite", "ignore", "rollback"),
    ("train.resume", "always", "force"),
    ("data.on_bad_example", "warn", "skip"),
    ("train.inject_nonfinite_at", (0,), "step numbers"),
    ("train.stop_at", -1, "integer >= 0"),
  ],
)
def test_fault_handling_options_are_checked(key, value, expected):
  config = base_config()
  config.update_from_flattened_dict({key: value})
  with pytest.raises(InputError, match=rf"config.{key}=.*{expected}"):
    validate(config)

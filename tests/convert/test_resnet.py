"""The ResNet converter against a PyTorch ResNet with random weights, stage by stage."""

import jax
import numpy as np
import pytest

from segjax.convert.resnet import from_torch, layout
from segjax.errors import InputError
from segjax.models.backbones import ResNet

torch = pytest.importorskip("torch", reason="torch, the reference implementation, is not installed")
import torch_resnet  # noqa: E402


def _compare(reference, depth, *, output_stride=None, size=(64, 80), seed=0, **options):
  state_dict = reference.state_dict()  # torch tensors, as a user in a notebook would pass them
  variables = from_torch(state_dict, depth)
  images = np.random.default_rng(seed).normal(size=(2, *size, 3)).astype(np.float32)
  with torch.no_grad():
    expected = reference.features(torch.from_numpy(images.transpose(0, 3, 1, 2)))
  model = ResNet(depth=depth, output_stride=output_stride, **options)
  actual = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, images)
  assert actual.keys() == expected.keys()
  for name, want in expected.items():
    want = want.numpy().transpose(0, 2, 3, 1)
    got = np.asarray(actual[name])
    assert got.shape == want.shape, name
    # Relative to the scale of the features: float32 sums in a different order.
    scale = np.abs(want).max()
    assert np.abs(got - want).max() <= 1e-4 * scale, (name, np.abs(got - want).max(), scale)


@pytest.mark.parametrize("depth", [18, 50])
def test_torchvision_layout_matches_every_stage(depth):
  reference = torch_resnet.randomize(torch_resnet.ResNet(depth), seed=depth)
  _compare(reference, depth)


def test_dilated_output_stride_8_matches_replace_stride_with_dilation():
  reference = torch_resnet.ResNet(50, replace_stride_with_dilation=(False, True, True))
  _compare(torch_resnet.randomize(reference, seed=1), 50, output_stride=8, size=(48, 40))


def test_timm_resnet_d_layout_deep_stem_and_avg_down():
  reference = torch_resnet.randomize(torch_resnet.ResNet(50, deep_stem=True, avg_down=True), 2)
  state_dict = {k: v.numpy() for k, v in reference.state_dict().items()}
  assert layout(state_dict) == {"deep_stem": True, "avg_down": True}
  # Odd sizes exercise the average pool's partial windows (ceil_mode, count_include_pad=False).
  _compare(reference, 50, size=(66, 50), deep_stem=True, avg_down=True)


def test_mmsegmentation_v1c_keys_convert_like_timm_deep_stem():
  reference = torch_resnet.randomize(torch_resnet.ResNet(18, deep_stem=True), 3)
  timm = {k: v.numpy() for k, v in reference.state_dict().items()}
  # The same weights under mmsegmentation's names: stem.{0,1,3,4,6,7}, all under `backbone.`.
  renamed = {"conv1.0": "stem.0", "conv1.1": "stem.1", "conv1.3": "stem.3", "conv1.4": "stem.4",
             "conv1.6": "stem.6", "bn1": "stem.7"}  # fmt: skip
  mmseg = {}
  for key, value in timm.items():
    module, _, field = key.rpartition(".")
    mmseg[f"backbone.{renamed.get(module, module)}.{field}"] = value
  a, b = from_torch(timm, 18), from_torch(mmseg, 18)
  assert jax.tree.all(jax.tree.map(np.array_equal, a, b))


def test_parameter_count_of_resnet50_matches_the_published_one():
  reference = torch_resnet.ResNet(50)
  assert sum(p.numel() for p in reference.parameters()) == 25_557_032
  variables = from_torch({k: v.numpy() for k, v in reference.state_dict().items()}, 50)
  # Without the 2048 x 1000 classifier and its bias.
  assert sum(x.size for x in jax.tree.leaves(variables["params"])) == 25_557_032 - 2_049_000


def test_wrong_depth_names_the_problem():
  state_dict = {k: v.numpy() for k, v in torch_resnet.ResNet(18).state_dict().items()}
  with pytest.raises(InputError, match="ResNet-34"):
    from_torch(state_dict, 34)
  with pytest.raises(InputError, match="depth=20"):
    from_torch(state_dict, 20)

"""torchvision / timm / mmsegmentation ResNet state dicts -> variables of `segjax ResNet`.

Three key layouts are read: torchvision's and timm's plain ResNets (`conv1`, `bn1`,
`layer1.0.conv1`, `layer1.0.downsample.0`), timm's deep-stem ResNet-D (`conv1.0`, `conv1.1`, ...,
`conv1.6`, `bn1`; shortcut `downsample.1`/`.2` after an average pool) and mmsegmentation's V1c
(`stem.0` ... `stem.7`, optionally under `backbone.`). The classifier (`fc.*`) is dropped.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np

from segjax.errors import InputError
from segjax.models.backbones.resnet import DEPTHS, ResNet

# Deep-stem indices: timm nests convs and norms in `conv1` and has a separate last norm `bn1`;
# mmsegmentation nests all three pairs in `stem`.
_TIMM_STEM = {"conv1.0": "stem_conv0", "conv1.1": "stem_bn0", "conv1.3": "stem_conv1",
              "conv1.4": "stem_bn1", "conv1.6": "stem_conv2", "bn1": "stem_bn2"}  # fmt: skip
_MMSEG_STEM = {"stem.0": "stem_conv0", "stem.1": "stem_bn0", "stem.3": "stem_conv1",
               "stem.4": "stem_bn1", "stem.6": "stem_conv2", "stem.7": "stem_bn2"}  # fmt: skip
_BN_FIELDS = {
  "weight": ("params", "scale"),
  "bias": ("params", "bias"),
  "running_mean": ("batch_stats", "mean"),
  "running_var": ("batch_stats", "var"),
}
_BLOCK = re.compile(r"layer(\d)\.(\d+)\.(conv\d|bn\d|downsample\.\d)$")


def layout(state_dict: dict[str, np.ndarray]) -> dict[str, bool]:
  """`{"deep_stem": ..., "avg_down": ...}`: the ResNet options a state dict was trained with."""
  keys = _strip_prefix(state_dict).keys()
  return {
    "deep_stem": any(k.startswith(("conv1.0.", "stem.0.")) for k in keys),
    "avg_down": any(re.search(r"downsample\.2\.weight$", k) for k in keys),
  }


def from_torch(state_dict: dict[str, np.ndarray], depth: int) -> dict[str, dict]:
  """Converts a ResNet-`depth` state dict into `{"params": ..., "batch_stats": ...}` of
  `ResNet(depth, deep_stem=..., avg_down=...)` (the options read from the keys, see `layout`).

  Conv kernels go from [O,I,kh,kw] to [kh,kw,I,O]; batch norms' weight/bias/running_mean/
  running_var become scale/bias/mean/var. Every variable of the Flax module must be filled
  exactly once and with the same shape.

  Raises:
    InputError: naming the missing, unexpected or misshapen keys.
  """
  if depth not in DEPTHS:
    raise InputError(f"ResNet depth={depth} is not one of {sorted(DEPTHS)}.")
  state_dict = _strip_prefix(state_dict)
  options = layout(state_dict)
  stem = _TIMM_STEM if any(k.startswith("conv1.0.") for k in state_dict) else _MMSEG_STEM
  converted: dict[tuple[str, ...], np.ndarray] = {}
  unexpected = []
  for key, value in state_dict.items():
    module, _, field = key.rpartition(".")
    if module.startswith("fc") or field == "num_batches_tracked":
      continue
    target = _module_path(module, stem if options["deep_stem"] else {}, np.ndim(value), field)
    if target is None:
      unexpected.append(key)
      continue
    collection, name, array = _variable(module, field, np.asarray(value))
    if collection is None:
      unexpected.append(key)
      continue
    converted[(collection, *target, name)] = array

  model = ResNet(depth=depth, **options)
  expected = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 64, 64, 3))))
  flat = {tuple(k.key for k in path): leaf for path, leaf in _flatten(expected)}
  missing = sorted("/".join(k) for k in flat.keys() - converted.keys())
  unexpected += sorted("/".join(k) for k in converted.keys() - flat.keys())
  if missing or unexpected:
    raise InputError(
      f"The state dict does not fit ResNet-{depth} {options}: missing {missing[:6]}"
      f"{' ...' if len(missing) > 6 else ''}, unexpected {unexpected[:6]}"
      f"{' ...' if len(unexpected) > 6 else ''}. Is it a ResNet-{depth}?"
    )
  for key, leaf in flat.items():
    if converted[key].shape != leaf.shape:
      raise InputError(
        f"{'/'.join(key)} has shape {converted[key].shape} in the state dict but {leaf.shape} "
        f"in ResNet-{depth}: is the state dict a ResNet-{depth}?"
      )
  variables: dict = {}
  for key, array in converted.items():
    node = variables
    for part in key[:-1]:
      node = node.setdefault(part, {})
    node[key[-1]] = array.astype(np.float32)
  return variables


def _strip_prefix(state_dict: dict) -> dict:
  """Drops a `backbone.` prefix (mmsegmentation segmentors) when every ResNet key has it."""
  if state_dict and all(k.startswith("backbone.") for k in state_dict):
    return {k.removeprefix("backbone."): v for k, v in state_dict.items()}
  return state_dict


def _module_path(module: str, stem: dict[str, str], ndim: int, field: str):
  if module in stem:
    return (stem[module],)
  if module in ("conv1", "bn1"):
    return (module,)
  match = _BLOCK.match(module)
  if match is None:
    return None
  stage, block, layer = match.groups()
  if layer.startswith("downsample"):
    # The conv of the shortcut has a 4-D weight; its norm's weight is 1-D.
    is_conv = field == "weight" and ndim == 4
    layer = "downsample_conv" if is_conv else "downsample_bn"
  return (f"layer{stage}_{block}", layer)


def _variable(module: str, field: str, value: np.ndarray):
  """(collection, name, array) of one torch tensor, or (None, None, None) if it has no place."""
  if value.ndim == 4 and field == "weight":
    return "params", "kernel", value.transpose(2, 3, 1, 0)
  if field in _BN_FIELDS and value.ndim == 1:
    collection, name = _BN_FIELDS[field]
    return collection, name, value
  return None, None, None


def _flatten(tree):
  return jax.tree_util.tree_flatten_with_path(tree)[0]


def load_pretrained_backbone(state, model, path: str):
  """`state` with its `backbone` variables replaced by the ResNet weights in the file `path`.

  Args:
    state: a TrainState of `model`, whose ResNet is the submodule named `backbone`.
    model: a model with `backbone` ("resnet50", ...), `deep_stem` and `avg_down` attributes.
    path: a torchvision/timm/mmsegmentation state dict (.pth, .pt, .bin or .safetensors).
  Raises:
    InputError: when the file is unreadable or holds another ResNet than the config asks for.
  """
  from segjax.convert.torch_files import load_state_dict
  from segjax.models.backbones import BACKBONES

  state_dict = load_state_dict(path)
  for option, value in layout(state_dict).items():
    if getattr(model, option) != value:
      raise InputError(
        f"{path} holds a ResNet with {option}={value}; set "
        f"config.model.backbone.{option}={value} to load it."
      )
  try:
    variables = from_torch(state_dict, BACKBONES[model.backbone])
  except InputError as error:
    raise InputError(f"{path}: {error}") from error
  replaced = {}
  for collection in ("params", "batch_stats"):
    current = getattr(state, collection)["backbone"]
    new = variables.get(collection, {})
    shapes = [a.shape for a in jax.tree.leaves(current)], [b.shape for b in jax.tree.leaves(new)]
    fits = jax.tree.structure(current) == jax.tree.structure(new) and shapes[0] == shapes[1]
    if not fits:
      raise InputError(
        f"{path} does not fit the model's {model.backbone}: its {collection} differ in "
        "structure or shape (a backbone narrower than 64 channels cannot load ImageNet weights)."
      )
    replaced[collection] = {**getattr(state, collection), "backbone": new}
  return state.replace(**replaced)

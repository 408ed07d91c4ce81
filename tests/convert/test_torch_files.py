"""`load_state_dict`: what torch writes, read back without torch, value for value."""

import collections
import io
import os
import pickle
import struct
import tarfile
import types
import zipfile

import numpy as np
import pytest

from segjax.convert.torch_files import load_state_dict
from segjax.errors import InputError

torch = pytest.importorskip(
  "torch", reason="torch (the reference that writes the files) is not installed"
)
safetensors_torch = pytest.importorskip("safetensors.torch")  # Imports torch.

_MAGIC, _PROTOCOL = 0x1950A86A20F9469CFC6C, 1001
_SYS_INFO = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4, "long": 4}}


def _state_dict() -> dict:
  """A model's state dict (an OrderedDict with `_metadata`) and cases a reader can get wrong."""
  torch.manual_seed(0)
  model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
  model(torch.randn(2, 3, 6, 6))  # Updates the running statistics and num_batches_tracked.
  state = model.state_dict()
  base = torch.randn(4, 6)
  state.update({
    "base": base,
    "transposed": base.t(),  # Shares base's storage, not contiguous.
    "slice": base[1:3, 2:5],  # Shares it from an offset.
    "half": torch.randn(3, 2).half(),
    "bf16": torch.randn(5).bfloat16(),
    "param": torch.nn.Parameter(torch.randn(2, 2)),
    "scalar": torch.tensor(3.5, dtype=torch.float64),
    "flags": torch.tensor([True, False]),
    "int8": torch.arange(-3, 3, dtype=torch.int8),
    "uint8": torch.arange(250, 256, dtype=torch.uint8),
    "int32": torch.tensor([[7, -8]], dtype=torch.int32),
    "empty": torch.zeros(0, 3),
  })  # fmt: skip
  return state


def _numpy(tensor) -> np.ndarray:
  tensor = tensor.detach()
  return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor.resolve_conj()).numpy()


def _assert_same(arrays: dict, tensors: dict) -> None:
  assert sorted(arrays) == sorted(tensors)
  for key, tensor in tensors.items():
    expected = _numpy(tensor)
    assert arrays[key].dtype == expected.dtype, key
    assert arrays[key].flags.writeable, key
    np.testing.assert_array_equal(arrays[key], expected, err_msg=key)


def _save_v1(obj, path) -> None:
  """As torch 0.2 and 0.3 saved: the legacy stream, with `torch._utils._rebuild_tensor`."""

  class Pickler(pickle.Pickler):
    def reducer_override(self, obj):
      if not isinstance(obj, torch.Tensor):
        return NotImplemented
      obj = obj.detach()
      storage = torch.storage.TypedStorage(
        wrap_storage=obj.untyped_storage(), dtype=obj.dtype, _internal=True
      )
      args = (storage, obj.storage_offset(), tuple(obj.size()), obj.stride())
      return torch._utils._rebuild_tensor, args

  module = types.ModuleType("pickle_v1")
  module.Pickler, module.dump = Pickler, pickle.dump
  torch.save(obj, path, pickle_module=module, _use_new_zipfile_serialization=False)


def _pickles(*objs) -> bytes:
  return b"".join(pickle.dumps(obj, protocol=2) for obj in objs)


def _write_tar(path, members: dict[str, bytes]) -> None:
  with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
    for name, data in members.items():
      info = tarfile.TarInfo(name)
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))


def _save_tar(obj, path) -> None:
  """As the first torch releases saved (torchvision's first ResNet weights): a tar of `sys_info`,
  `pickle` (the object, tensors as persistent ids), `tensors` and `storages`, each a stream of
  pickles with raw metadata or data between them."""
  tensors, storages = {}, {}

  class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
      if isinstance(obj, torch.Tensor):
        tensors[id(obj)] = obj.detach()
        return str(id(obj))
      return None

  pickled = io.BytesIO()
  Pickler(pickled, protocol=2).dump(obj)
  tensor_file = [_pickles(len(tensors))]
  for key, tensor in tensors.items():
    storage_key = tensor.untyped_storage().data_ptr()
    storages[storage_key] = tensor
    tensor_type = getattr(torch, tensor.type().removeprefix("torch."))  # torch.FloatTensor, ...
    numbers = [*tensor.shape, *tensor.stride(), tensor.storage_offset()]
    tensor_file.append(_pickles((key, storage_key, tensor_type)))
    tensor_file.append(struct.pack(f"<i4x{len(numbers)}q", tensor.dim(), *numbers))
  storage_file = [_pickles(len(storages))]
  for key, tensor in storages.items():
    storage_type = getattr(torch, tensor.type().removeprefix("torch.").replace("Tensor", "Storage"))
    whole = torch.empty(0, dtype=tensor.dtype).set_(tensor.untyped_storage())
    storage_file.append(_pickles((key, "cpu", storage_type)) + struct.pack("<q", whole.numel()))
    storage_file.append(whole.view(torch.uint8).numpy().tobytes())
  storage_file.append(_pickles([]))  # No storage views.
  _write_tar(
    path,
    {
      "sys_info": _pickles({**_SYS_INFO, "protocol_version": 1000}),
      "pickle": pickled.getvalue(),
      "tensors": b"".join(tensor_file),
      "storages": b"".join(storage_file),
    },
  )


_SAVERS = {
  "zip": torch.save,
  "legacy": lambda obj, path: torch.save(obj, path, _use_new_zipfile_serialization=False),
  "legacy_v1": _save_v1,
  "tar": _save_tar,
}


@pytest.mark.parametrize("saver", list(_SAVERS))
def test_every_tensor_comes_back_exactly(tmp_path, saver):
  state = _state_dict()
  _SAVERS[saver](state, tmp_path / "model.pth")
  arrays = load_state_dict(tmp_path / "model.pth")
  _assert_same(arrays, state)
  assert list(arrays) == list(state)
  assert arrays["bf16"].dtype == np.float32 and arrays["half"].dtype == np.float16
  assert arrays["1.num_batches_tracked"].dtype == np.int64 and arrays["1.num_batches_tracked"] == 1


def test_safetensors_bfloat16_and_float8_become_float32(tmp_path):
  state = {k: v.detach().contiguous().clone() for k, v in _state_dict().items()}
  values = torch.tensor([0.5, -2.0, 448.0, 0.0])
  state |= {
    "e4m3": values.to(torch.float8_e4m3fn),
    "e5m2": values.to(torch.float8_e5m2),
    "e8m0": torch.tensor([0.5, 2.0, 2.0**-20]).to(torch.float8_e8m0fnu),
  }
  safetensors_torch.save_file(state, tmp_path / "model.safetensors")
  arrays = load_state_dict(str(tmp_path / "model.safetensors"))
  _assert_same(
    arrays, {k: v.float() if k in ("e4m3", "e5m2", "e8m0") else v for k, v in state.items()}
  )
  assert {arrays[k].dtype for k in ["bf16", "e4m3", "e5m2", "e8m0"]} == {np.dtype(np.float32)}


def test_newer_dtypes_and_lazy_negation_and_conjugation(tmp_path):
  state = {
    "uint16": torch.tensor([1, 65535], dtype=torch.uint16),  # _rebuild_tensor_v3, untyped bytes
    "float8": torch.tensor([0.5, -2.0, 448.0]).to(torch.float8_e4m3fn),
    "conj": torch.tensor([1 + 2j, 3 - 1j]).conj(),  # data unconjugated, a flag in the metadata
    "neg": torch.tensor([1 + 2j, 3 - 1j]).conj().imag,  # likewise negation
  }
  torch.save(state, tmp_path / "new.pt")
  arrays = load_state_dict(tmp_path / "new.pt")
  np.testing.assert_array_equal(arrays["uint16"], np.array([1, 65535], np.uint16))
  np.testing.assert_array_equal(arrays["float8"], np.array([0.5, -2.0, 448.0], np.float32))
  np.testing.assert_array_equal(arrays["conj"], np.array([1 - 2j, 3 + 1j], np.complex64))
  np.testing.assert_array_equal(arrays["neg"], np.array([-2.0, 1.0], np.float32))


@pytest.mark.parametrize("saver", ["zip", "legacy"])
def test_training_checkpoints_are_unwrapped(tmp_path, saver):
  state = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).state_dict()
  # An optimizer's state dict, with tensors too (torch.optim's first step takes seconds).
  optimizer = {"state": {0: {"momentum_buffer": torch.ones(3)}}, "param_groups": [{"params": [0]}]}
  wrapped = {"epoch": 3, "arch": "toy", "optimizer": optimizer, "state_dict": state}
  data_parallel = collections.OrderedDict((f"module.{k}", v) for k, v in state.items())
  for name, obj in {
    "wrapped": wrapped,
    "data_parallel": data_parallel,
    "both": {"model": data_parallel, "best_miou": 0.5},
    "other_key": {"ema": state, "step": 10},
  }.items():
    _SAVERS[saver](obj, tmp_path / f"{name}.pth")
    _assert_same(load_state_dict(tmp_path / f"{name}.pth"), state)


def test_several_candidate_state_dicts_are_an_error(tmp_path):
  state = torch.nn.Linear(2, 2).state_dict()
  torch.save({"student": state, "teacher": state}, tmp_path / "dino.pth")
  with pytest.raises(InputError, match=r"dino\.pth .*'student', 'teacher'.*'state_dict'"):
    load_state_dict(tmp_path / "dino.pth")


def test_storage_views_of_old_formats(tmp_path):
  """Before torch 0.4 a tensor could lie on a slice of a storage: the legacy stream says so in the
  storage's persistent id, the tar format in a list of views after the storages."""
  data = np.arange(6, dtype=np.float32).tobytes()
  tensor, view = object(), object()

  class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
      if obj is view:  # Elements 2 to 4 of storage "7", as storage "8".
        return ("storage", torch.FloatStorage, "7", "cpu", 6, ("8", 2, 3))
      return None

    def reducer_override(self, obj):
      if obj is tensor:
        return torch._utils._rebuild_tensor_v2, (view, 1, (2,), (1,), False, {})
      return NotImplemented

  pickled = io.BytesIO()
  Pickler(pickled, protocol=2).dump({"w": tensor})
  raw = _pickles(_MAGIC, _PROTOCOL, _SYS_INFO) + pickled.getvalue() + _pickles(["7"])
  (tmp_path / "legacy.pth").write_bytes(raw + struct.pack("<q", 6) + data)

  storages = _pickles(1, (7, "cpu", torch.FloatStorage)) + struct.pack("<q", 6) + data
  storages += _pickles([(8, 7, 2, 3)])  # Storage 8 is elements 2 to 4 of storage 7.
  tensors = _pickles(1, (3, 8, torch.FloatTensor)) + struct.pack("<i4x3q", 1, 2, 1, 1)
  pickled = b"\x80\x02}X\x01\x00\x00\x00wX\x01\x00\x00\x003Qs."  # {"w": <persistent id "3">}
  members = {"sys_info": _pickles(_SYS_INFO), "pickle": pickled, "tensors": tensors}
  _write_tar(tmp_path / "tar.pth", members | {"storages": storages})

  for name in ["legacy.pth", "tar.pth"]:
    np.testing.assert_array_equal(load_state_dict(tmp_path / name)["w"], [3.0, 4.0], err_msg=name)


def test_missing_and_foreign_files(tmp_path):
  with pytest.raises(InputError, match=r"nothing\.pth does not exist.*\.safetensors"):
    load_state_dict(tmp_path / "nothing.pth")
  (tmp_path / "x.pth").write_text("not weights\n")
  with pytest.raises(InputError, match=r"x\.pth is not a PyTorch checkpoint.*\.safetensors file"):
    load_state_dict(tmp_path / "x.pth")
  with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
    archive.writestr("readme.txt", "hello")
  with pytest.raises(InputError, match=r"other\.zip cannot be read as a torch.save zip archive"):
    load_state_dict(tmp_path / "other.zip")
  (tmp_path / "bad.safetensors").write_bytes(struct.pack("<q", 10) + b"{not json}")
  with pytest.raises(InputError, match=r"bad\.safetensors cannot be read as a \.safetensors file"):
    load_state_dict(tmp_path / "bad.safetensors")
  torch.save(torch.ones(2), tmp_path / "tensor.pt")
  with pytest.raises(InputError, match="holds a tensor, not a dict of tensors"):
    load_state_dict(tmp_path / "tensor.pt")


@pytest.mark.parametrize("saver", ["zip", "legacy"])
def test_truncated_files(tmp_path, saver):
  _SAVERS[saver](_state_dict(), tmp_path / "model.pth")
  data = (tmp_path / "model.pth").read_bytes()
  (tmp_path / "model.pth").write_bytes(data[: len(data) - 100])
  with pytest.raises(InputError, match=r"model\.pth cannot be read"):
    load_state_dict(tmp_path / "model.pth")


def test_a_tensor_larger_than_its_storage_is_refused(tmp_path):
  torch.save({"w": torch.ones(100)}, tmp_path / "model.pth")
  with zipfile.ZipFile(tmp_path / "model.pth") as source:
    members = {name: source.read(name) for name in source.namelist()}
  with zipfile.ZipFile(tmp_path / "model.pth", "w") as target:
    for name, data in members.items():
      target.writestr(name, data[:8] if name.endswith("/data/0") else data)
  with pytest.raises(InputError, match="reaches past the end of its storage"):
    load_state_dict(tmp_path / "model.pth")


def test_a_packed_float4_safetensors_tensor_is_refused(tmp_path):
  tensors = {"w": torch.zeros(2, dtype=torch.uint8).view(torch.float4_e2m1fn_x2)}
  safetensors_torch.save_file(tensors, tmp_path / "f4.safetensors")
  with pytest.raises(InputError, match="tensor 'w' has dtype F4, which numpy cannot hold"):
    load_state_dict(tmp_path / "f4.safetensors")


class _RunsACommand:
  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return os.system, (f"touch {self.marker}",)


def test_pickles_cannot_run_code(tmp_path):
  marker = tmp_path / "ran"
  payload = pickle.dumps({"w": _RunsACommand(marker)}, protocol=2)
  (tmp_path / "evil.pth").write_bytes(payload)
  with zipfile.ZipFile(tmp_path / "evil.pt", "w") as archive:
    archive.writestr("archive/data.pkl", payload)
  for name in ["evil.pth", "evil.pt"]:
    with pytest.raises(InputError, match=r"refers to the Python object (posix|os)\.system"):
      load_state_dict(tmp_path / name)
  assert not marker.exists()

  # BUILD could otherwise reset the defaults of a rebuild function, for every later file.
  (tmp_path / "build.pth").write_bytes(b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nN}\x86b.")
  with pytest.raises(InputError, match="sets the state of a Function"):
    load_state_dict(tmp_path / "build.pth")

  torch.save(torch.nn.Conv2d(1, 1, 1), tmp_path / "whole_model.pth")
  with pytest.raises(InputError, match=r"torch\.nn\.modules\.conv\.Conv2d.*state_dict\(\)"):
    load_state_dict(tmp_path / "whole_model.pth")

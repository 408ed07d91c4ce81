"""The tensors of a PyTorch checkpoint file as numpy arrays, read without torch.

Reads `.safetensors` and the three formats of `torch.save`: the zip archive (torch >= 1.6), the
legacy stream of pickles (torch < 1.6, or `_use_new_zipfile_serialization=False`) and the tar
archive of the earliest releases (torchvision's first ResNet weights, e.g. resnet50-19c8e357.pth).
The pickles go through an unpickler that knows only tensors, storages and containers, so a file
cannot run code. bfloat16 and float8 tensors become float32, as numpy has no such dtypes.
"""

import collections
import dataclasses
import functools
import io
import json
import pathlib
import pickle
import struct
import tarfile
import zipfile
from collections.abc import Callable
from typing import Any, BinaryIO

import ml_dtypes
import numpy as np
import safetensors

from segjax.errors import InputError

_EXPECTED = (
  "a PyTorch checkpoint (.pth/.pt/.bin, from torch.save: zip, legacy or tar format) "
  "or a .safetensors file"
)
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
# Where training checkpoints keep the model's state dict, in order of preference.
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model_state", "model", "module")

_WIDENED_TO_FLOAT32 = {
  name: np.dtype(getattr(ml_dtypes, name))
  for name in [
    "bfloat16",
    "float8_e4m3fn",
    "float8_e4m3fnuz",
    "float8_e5m2",
    "float8_e5m2fnuz",
    "float8_e8m0fnu",
  ]
}
# By torch's names for them.
_DTYPES = {
  name: np.dtype(name)
  for name in [
    "float64",
    "float32",
    "float16",
    "complex128",
    "complex64",
    "bool",
    "int64",
    "int32",
    "int16",
    "int8",
    "uint64",
    "uint32",
    "uint16",
    "uint8",
  ]
} | _WIDENED_TO_FLOAT32
# safetensors' names for them.
_SAFETENSORS_WIDENED = {
  "BF16": "bfloat16",
  "F8_E4M3": "float8_e4m3fn",
  "F8_E5M2": "float8_e5m2",
  "F8_E8M0": "float8_e8m0fnu",
}
# torch.save names a storage by its legacy class, one per dtype; newer dtypes get untyped bytes.
_STORAGE_DTYPES = {
  "DoubleStorage": "float64",
  "FloatStorage": "float32",
  "HalfStorage": "float16",
  "BFloat16Storage": "bfloat16",
  "ComplexDoubleStorage": "complex128",
  "ComplexFloatStorage": "complex64",
  "LongStorage": "int64",
  "IntStorage": "int32",
  "ShortStorage": "int16",
  "CharStorage": "int8",
  "ByteStorage": "uint8",
  "BoolStorage": "bool",
  "UntypedStorage": "uint8",
}
# The tar format also records each tensor's class (torch.FloatTensor, torch.cuda.FloatTensor, ...).
_TENSOR_TYPES = {name.replace("Storage", "Tensor") for name in _STORAGE_DTYPES}


class _Sealed:
  """Refuses pickle's BUILD opcode, which would change the object after it was checked."""

  __slots__ = ()

  def __setstate__(self, state):
    raise pickle.UnpicklingError(f"it sets the state of a {type(self).__name__.lstrip('_')}")


class _Function(_Sealed):
  """A function that pickles may call, sealed: BUILD could set a plain function's defaults."""

  __slots__ = ("_function",)

  def __init__(self, function: Callable):
    self._function = function

  def __call__(self, *args):
    return self._function(*args)


@dataclasses.dataclass(frozen=True)
class _TorchName(_Sealed):
  """A torch storage class, tensor class or dtype that a pickle names; only the name is kept."""

  name: str


@dataclasses.dataclass(frozen=True)
class _Storage(_Sealed):
  """A storage's elements, read when `load()` is first called."""

  dtype: np.dtype
  load: Callable[[], np.ndarray]


@dataclasses.dataclass(frozen=True)
class _Tensor(_Sealed):
  """A tensor as a strided view of a storage, built into an array only if it is returned."""

  storage: _Storage
  dtype: np.dtype
  offset: int
  shape: tuple[int, ...]
  strides: tuple[int, ...]
  conj: bool
  neg: bool


def _storage_dtype(storage_type) -> np.dtype:
  if not (isinstance(storage_type, _TorchName) and storage_type.name in _STORAGE_DTYPES):
    raise pickle.UnpicklingError(f"{storage_type!r} is not a storage class")
  return _DTYPES[_STORAGE_DTYPES[storage_type.name]]


def _ints(values, what: str) -> tuple[int, ...]:
  if not isinstance(values, tuple | list) or not all(type(v) is int and v >= 0 for v in values):
    raise pickle.UnpicklingError(f"a tensor's {what} is {values!r}, not non-negative integers")
  return tuple(values)


def _tensor(storage, dtype, offset, size, stride, metadata) -> _Tensor:
  if not isinstance(storage, _Storage):
    raise pickle.UnpicklingError(f"a tensor's storage is {storage!r}")
  if dtype is None:
    dtype = storage.dtype
  elif isinstance(dtype, _TorchName) and dtype.name in _DTYPES:
    dtype = _DTYPES[dtype.name]
  else:
    raise pickle.UnpicklingError(f"a tensor's dtype is {dtype!r}")
  (offset,) = _ints([offset], "offset")
  shape, strides = _ints(size, "size"), _ints(stride, "stride")
  if len(shape) != len(strides):
    raise pickle.UnpicklingError(f"a tensor has size {shape} but stride {strides}")
  # Lazy conjugation and negation (x.conj() of a complex tensor) are flags, not applied to the data.
  flags = dict(metadata or {})
  if unknown := sorted(str(k) for k, v in flags.items() if v and k not in ("conj", "neg")):
    raise pickle.UnpicklingError(f"a tensor has unsupported metadata {unknown}")
  return _Tensor(
    storage, dtype, offset, shape, strides, bool(flags.get("conj")), bool(flags.get("neg"))
  )


def _rebuild_tensor_v2(
  storage, offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None
):
  """torch._utils._rebuild_tensor_v2; with only the first four arguments, _rebuild_tensor."""
  return _tensor(storage, None, offset, size, stride, metadata)


def _rebuild_tensor_v3(
  storage, offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None
):
  """torch._utils._rebuild_tensor_v3: dtypes without a storage class, over untyped bytes."""
  return _tensor(storage, dtype, offset, size, stride, metadata)


def _rebuild_parameter(data, *_):
  """torch._utils._rebuild_parameter(_with_state): an nn.Parameter is its data here."""
  return data


_FUNCTIONS = {
  ("torch._utils", "_rebuild_tensor"): _Function(_rebuild_tensor_v2),
  ("torch._utils", "_rebuild_tensor_v2"): _Function(_rebuild_tensor_v2),
  ("torch._utils", "_rebuild_tensor_v3"): _Function(_rebuild_tensor_v3),
  ("torch._utils", "_rebuild_parameter"): _Function(_rebuild_parameter),
  ("torch._utils", "_rebuild_parameter_with_state"): _Function(_rebuild_parameter),
  ("collections", "OrderedDict"): collections.OrderedDict,
  ("torch", "Size"): tuple,
}


class _Unpickler(pickle.Unpickler):
  """Builds tensors, storages and containers only: any other global is refused, not imported."""

  def __init__(self, file: BinaryIO, persistent_load: Callable[[Any], Any] | None):
    super().__init__(file, encoding="utf-8")  # As torch.load decodes Python 2 strings.
    self._persistent_load = persistent_load

  def find_class(self, module: str, name: str) -> Any:
    if (module, name) in _FUNCTIONS:
      return _FUNCTIONS[module, name]
    if module in ("torch", "torch.cuda", "torch.storage") and (
      name in _STORAGE_DTYPES or name in _TENSOR_TYPES or name in _DTYPES
    ):
      return _TorchName(name)
    raise pickle.UnpicklingError(
      f"it refers to the Python object {module}.{name}, which is not a tensor or a container of "
      "tensors, and unpickling it could run arbitrary code. If you trust the file, re-save the "
      "weights alone, with torch.save(model.state_dict(), path) or as .safetensors"
    )

  def persistent_load(self, pid: Any) -> Any:
    if self._persistent_load is None:
      raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
    return self._persistent_load(pid)


def _unpickle(file: BinaryIO, persistent_load: Callable[[Any], Any] | None = None) -> Any:
  return _Unpickler(file, persistent_load).load()


def _read(file: BinaryIO, size: int) -> bytes:
  data = file.read(size)
  if len(data) != size:
    raise ValueError("the file is truncated")
  return data


def _array(tensor: _Tensor) -> np.ndarray:
  base = tensor.storage.load()
  if tensor.dtype != base.dtype:
    if base.dtype != np.uint8 or base.size % tensor.dtype.itemsize:
      raise ValueError(f"a {tensor.dtype} tensor lies on a {base.dtype} storage")
    base = base.view(tensor.dtype)
  if 0 in tensor.shape:
    array = np.zeros(tensor.shape, tensor.dtype)
  else:
    last = tensor.offset + sum(
      (n - 1) * s for n, s in zip(tensor.shape, tensor.strides, strict=True)
    )
    if last >= base.size:  # as_strided would read past the storage
      raise ValueError(f"a tensor of size {tensor.shape} reaches past the end of its storage")
    array = np.lib.stride_tricks.as_strided(
      base[tensor.offset :],
      tensor.shape,
      [s * base.itemsize for s in tensor.strides],
      writeable=False,
    ).copy()
  if tensor.conj:
    array = np.conj(array)
  if tensor.neg:
    array = np.negative(array)
  return _widen(array)


def _widen(array: np.ndarray) -> np.ndarray:
  return array.astype(np.float32) if array.dtype in _WIDENED_TO_FLOAT32.values() else array


def _has_tensors(obj: Any) -> bool:
  return isinstance(obj, dict) and any(
    isinstance(v, _Tensor) or _has_tensors(v) for v in obj.values()
  )


def _state_dict(obj: Any) -> dict[str, np.ndarray]:
  """The tensors of the state dict `obj` is, or that the training checkpoint `obj` wraps."""
  while isinstance(obj, dict) and not any(isinstance(v, _Tensor) for v in obj.values()):
    holders = [k for k, v in obj.items() if _has_tensors(v)]
    preferred = [k for k in _WRAPPER_KEYS if k in holders]
    if not preferred and len(holders) != 1:
      raise ValueError(
        f"it holds no tensors at its top level, and {len(holders)} of its entries hold some "
        f"(its keys: {', '.join(map(repr, obj))}); expected a state dict of tensors, or a "
        f"checkpoint dict with one under {' or '.join(map(repr, _WRAPPER_KEYS))}"
      )
    obj = obj[(preferred or holders)[0]]
  if not isinstance(obj, dict):
    kind = "a tensor" if isinstance(obj, _Tensor) else type(obj).__name__
    raise ValueError(f"it holds {kind}, not a dict of tensors")
  # Wrapper entries such as an epoch or a name are dropped; num_batches_tracked is a tensor.
  return {k: _array(v) for k, v in obj.items() if isinstance(k, str) and isinstance(v, _Tensor)}


def _load_zip(path: pathlib.Path) -> dict[str, np.ndarray]:
  """torch >= 1.6: `<prefix>/data.pkl` pickles the object, `<prefix>/data/<key>` holds storages."""
  with zipfile.ZipFile(path) as archive:
    names = set(archive.namelist())
    pickles = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
    if len(pickles) != 1:
      raise ValueError("the zip archive holds no <prefix>/data.pkl, as torch.save writes")
    prefix = pickles[0].removesuffix("data.pkl")
    if f"{prefix}byteorder" in names and archive.read(f"{prefix}byteorder") != b"little":
      raise ValueError("it was saved on a big-endian machine, which is not supported")
    storages = {}

    def persistent_load(pid):
      kind, storage_type, key, _location, _numel = pid
      if kind != "storage" or not isinstance(key, str):
        raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
      dtype = _storage_dtype(storage_type)
      if key not in storages:
        member = f"{prefix}data/{key}"
        load = functools.cache(lambda: np.frombuffer(archive.read(member), dtype))
        storages[key] = _Storage(dtype, load)
      return storages[key]

    return _state_dict(_unpickle(io.BytesIO(archive.read(pickles[0])), persistent_load))


def _load_legacy(path: pathlib.Path) -> dict[str, np.ndarray]:
  """torch < 1.6: pickles of a magic number, a version, sys_info, the object and the storage keys;
  then each storage as an int64 element count and its elements, in the order of the keys."""
  with open(path, "rb") as file:
    if _unpickle(file) != _LEGACY_MAGIC:
      raise ValueError("it does not start with torch.save's magic number")
    if (version := _unpickle(file)) != _LEGACY_PROTOCOL:
      raise ValueError(f"its legacy format version is {version!r}, not {_LEGACY_PROTOCOL}")
    sys_info = _unpickle(file)
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", True):
      raise ValueError("it was saved on a big-endian machine, which is not supported")
    arrays: dict[str, np.ndarray] = {}  # Filled in after the object is unpickled.
    storages: dict[str, _Storage] = {}

    def persistent_load(pid):
      kind, storage_type, key, _location, _numel, view = pid
      if kind != "storage" or not isinstance(key, str):
        raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
      root = storages.setdefault(key, _Storage(_storage_dtype(storage_type), lambda: arrays[key]))
      if view is None:
        return root
      view_key, offset, size = view  # In elements of the root storage.
      return storages.setdefault(
        view_key, _Storage(root.dtype, lambda: root.load()[offset : offset + size])
      )

    obj = _unpickle(file, persistent_load)
    for key in _unpickle(file):
      (numel,) = struct.unpack("<q", _read(file, 8))
      dtype = storages[key].dtype
      arrays[key] = np.frombuffer(_read(file, numel * dtype.itemsize), dtype)
    return _state_dict(obj)


def _load_tar(path: pathlib.Path) -> dict[str, np.ndarray]:
  """The first torch releases: a tar of pickles. `storages` and `tensors` hold them with raw data
  between the pickles; `pickle` has the object, with persistent ids naming tensors and storages."""
  with tarfile.open(path, mode="r:") as tar:

    def member(name: str) -> BinaryIO:
      file = tar.extractfile(name)  # Read in memory: nothing is extracted onto the disk.
      if file is None:
        raise ValueError(f"its tar member {name!r} is not a file")
      return io.BytesIO(file.read())

    objects: dict[int, _Storage | _Tensor] = {}
    file = member("storages")
    for _ in range(_unpickle(file)):
      key, _location, storage_type = _unpickle(file)
      dtype = _storage_dtype(storage_type)
      (numel,) = struct.unpack("<q", _read(file, 8))
      data = np.frombuffer(_read(file, numel * dtype.itemsize), dtype)
      objects[key] = _Storage(dtype, lambda data=data: data)
    for view_key, root_key, offset, size in _unpickle(file):
      data = objects[root_key].load()[offset : offset + size]
      objects[view_key] = _Storage(data.dtype, lambda data=data: data)
    file = member("tensors")
    for _ in range(_unpickle(file)):
      key, storage_key, _tensor_type = _unpickle(file)
      (ndim,) = struct.unpack("<i4x", _read(file, 8))  # An int padded to 8 bytes.
      numbers = struct.unpack(f"<{2 * ndim + 1}q", _read(file, 8 * (2 * ndim + 1)))
      size, stride, offset = numbers[:ndim], numbers[ndim:-1], numbers[-1]
      objects[key] = _tensor(objects[storage_key], None, offset, size, stride, None)
    return _state_dict(_unpickle(member("pickle"), lambda pid: objects[int(pid)]))


def _load_safetensors(path: pathlib.Path) -> dict[str, np.ndarray]:
  """Through the safetensors package, except tensors of the dtypes numpy lacks, which its numpy
  loader cannot read in every version: those are read here, where the header says they lie."""
  tensors = {}
  with safetensors.safe_open(path, framework="np") as file:  # Checks the header first.
    with open(path, "rb") as raw:
      (size,) = struct.unpack("<Q", _read(raw, 8))
      header = json.loads(_read(raw, size))
    for key in file.keys():  # noqa: SIM118 (safe_open is not a mapping)
      kind = file.get_slice(key).get_dtype()
      if kind in _SAFETENSORS_WIDENED:
        start, end = header[key]["data_offsets"]
        data = np.fromfile(path, np.uint8, end - start, offset=8 + size + start)
        array = data.view(_DTYPES[_SAFETENSORS_WIDENED[kind]]).reshape(header[key]["shape"])
      else:
        try:
          array = file.get_tensor(key)
        except (TypeError, AttributeError) as e:
          raise ValueError(f"tensor {key!r} has dtype {kind}, which numpy cannot hold") from e
      tensors[key] = _widen(array)
  return tensors


def load_state_dict(path: str | pathlib.Path) -> dict[str, np.ndarray]:
  """Tensors of a PyTorch checkpoint a user downloaded, as numpy arrays, WITHOUT importing torch.

  `path` is a `.safetensors` file or a `torch.save` file in any of its formats, found from the
  content. A checkpoint that wraps the state dict (under "state_dict", "model", ...) is unwrapped
  and its other entries dropped, and a "module." prefix on every key (DataParallel) is removed.
  bfloat16 and float8 tensors become float32; other dtypes are kept. Raises `InputError` for a
  missing, corrupt or unsupported file, or one whose pickle refers to anything but tensors.
  """
  path = pathlib.Path(path).expanduser()
  if not path.is_file():
    raise InputError(f"{path} does not exist or is not a file; expected {_EXPECTED}.")
  with open(path, "rb") as file:
    head = file.read(512)
  if head.startswith(b"PK\x03\x04"):
    kind, load = "a torch.save zip archive", _load_zip
  elif path.suffix == ".safetensors" or head[8:9] == b"{":  # after the header's 8-byte length
    kind, load = "a .safetensors file", _load_safetensors
  elif head[257:262] == b"ustar":
    kind, load = "a tar archive of torch.save", _load_tar
  elif head.startswith(b"\x80"):  # pickle's PROTO opcode
    kind, load = "a legacy torch.save file", _load_legacy
  else:
    raise InputError(f"{path} is not {_EXPECTED}.")
  try:
    tensors = load(path)
  except Exception as e:  # Whatever a corrupt or foreign file makes the parsers raise.
    raise InputError(f"{path} cannot be read as {kind}: {e}. Expected {_EXPECTED}.") from e
  if tensors and all(k.startswith("module.") for k in tensors):
    tensors = {k.removeprefix("module."): v for k, v in tensors.items()}
  return tensors

"""Read a PyTorch state dict (`.pth`) into numpy arrays, without PyTorch.

colorgan's pretrained encoder comes as a PyTorch file and PyTorch is far too heavy a dependency for
reading one. Two layouts are read:

  legacy (torch.save before 1.6): consecutive pickles in one stream -- a magic number, the protocol
    version, system info (byte order, type sizes), the object itself, the list of storage keys --
    then for each key, in that order, an 8-byte little-endian element count and the storage's raw data.
  zip (torch.save from 1.6 on): `<archive>/data.pkl` holds the object, `<archive>/data/<key>` each
    storage's raw data, `<archive>/byteorder` the byte order where it is not little-endian.

In both, every tensor is pickled as a call to torch._utils._rebuild_tensor_v2(storage, offset, size,
stride, ...) whose storage is a persistent id ('storage', storage type, key, location, numel). The
tensors are rebuilt here as lazy references, then as arrays once their storages are read.

A .pth is a pickle, and unpickling can run any code it names: the unpickler here resolves only the
few names a state dict needs and refuses every other one.
"""
from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from colorgan.errors import ColorganError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

# torch.<Name>Storage -> numpy dtype (little-endian; swapped where the file says big-endian).
# bfloat16 has no numpy dtype: read as its 16 bits and widened to float32, which holds it exactly.
STORAGE_DTYPES = {
    "DoubleStorage": "<f8", "FloatStorage": "<f4", "HalfStorage": "<f2", "BFloat16Storage": "<u2",
    "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?",
}


@dataclass(frozen=True)
class StorageType:
    """What find_class gives for torch.<Name>Storage: the element type of the storages that name it."""
    name: str

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(STORAGE_DTYPES[self.name])


@dataclass
class Storage:
    """One storage of the file: its element type and count, and its data once read."""
    key: str
    type: StorageType
    numel: int
    data: np.ndarray | None = None


@dataclass
class TensorRef:
    """A tensor as the pickle describes it; `to_array` builds it once its storage has been read."""
    storage: Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]
    view_offset: int = 0  # where a storage view (legacy view_metadata) starts in its root storage

    def to_array(self) -> np.ndarray:
        data = self.storage.data
        start = self.view_offset + self.offset
        last = start + sum((n - 1) * s for n, s in zip(self.size, self.stride)) if all(self.size) else start - 1
        if start < 0 or last >= self.storage.numel or any(s < 0 for s in self.stride):
            raise ValueError(f"a tensor of size {list(self.size)} reaches outside its storage "
                             f"({self.storage.numel} elements)")
        if not all(self.size):
            array = np.zeros(self.size, data.dtype)
        else:
            array = np.lib.stride_tricks.as_strided(data[start:], self.size,
                                                    [s * data.itemsize for s in self.stride])
            # a C-ordered copy: writable, independent of the storage (torch files may hold
            # channels-last strides, which a plain copy would keep)
            array = np.array(array, order="C")
        if self.storage.type.name == "BFloat16Storage":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return array


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    """torch._utils._rebuild_tensor(_v2): the trailing requires_grad / hooks / metadata do not matter here."""
    if isinstance(storage, tuple):  # a legacy storage view: (root storage, offset into it)
        storage, view_offset = storage
    else:
        view_offset = 0
    if not isinstance(storage, Storage):
        raise pickle.UnpicklingError("a tensor whose storage is not a storage")
    return TensorRef(storage, int(storage_offset), tuple(int(n) for n in size),
                     tuple(int(s) for s in stride), view_offset)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *_ignored):
    """torch._utils._rebuild_parameter: an nn.Parameter is its tensor here."""
    return data


ALLOWED_FUNCTIONS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class RefusedName(Exception):
    """The pickle names something outside the allowed set (raised from find_class, reported by the caller)."""


class StateDictUnpickler(pickle.Unpickler):
    """An unpickler that resolves only what a state dict needs, and torch's storage persistent ids."""

    def __init__(self, file, storages: dict[str, Storage]):
        super().__init__(file)
        self.storages = storages  # shared across the legacy file's pickles: key -> Storage

    def find_class(self, module: str, name: str):
        if (module, name) in ALLOWED_FUNCTIONS:
            return ALLOWED_FUNCTIONS[module, name]
        if module == "torch" and name in STORAGE_DTYPES:
            return StorageType(name)
        raise RefusedName(f"{module}.{name}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unknown persistent id {str(pid)[:60]}")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, StorageType):
            raise pickle.UnpicklingError(f"storage {key} has no storage type")
        key = str(key)
        storage = self.storages.setdefault(key, Storage(key, storage_type, int(numel)))
        view = pid[5] if len(pid) > 5 else None
        if view is not None:  # (view key, offset, size): a slice of the root storage
            return storage, int(view[1])
        return storage


def load_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """name -> array (the tensor's shape and dtype) for every tensor in the .pth file at `path`.

    A checkpoint that wraps its state dict (under "state_dict" or "model") is unwrapped. Every problem
    (missing, truncated or corrupt file, a name the pickle may not use) is one ColorganError line.
    """
    path = Path(path)
    if not path.is_file():
        raise ColorganError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ColorganError(f"{path}: empty file")
    try:
        if zipfile.is_zipfile(path):
            obj = _load_zip(path)
        else:
            with open(path, "rb") as f:
                obj = _load_legacy(f)
        return _tensors_of(obj)
    except ColorganError as e:
        raise ColorganError(f"{path}: {e}") from None
    except RefusedName as e:
        raise ColorganError(f"{path}: refused to load: its pickle names {e}, which a PyTorch state dict "
                            "does not need (a .pth is a pickle: only tensors and dicts are read)") from None
    except (EOFError, struct.error) as e:
        raise ColorganError(f"{path}: truncated: the file ends early ({e or 'no more data'})") from None
    except (pickle.UnpicklingError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            zipfile.BadZipFile, OverflowError, MemoryError) as e:
        raise ColorganError(f"{path}: not a readable PyTorch file: {type(e).__name__}: {e}") from None


def _load_legacy(f) -> object:
    """The object of a legacy-format stream, with every storage read."""
    start = f.read(2)
    if start == b"PK":  # is_zipfile found no intact central directory, which sits at the end
        raise ColorganError("truncated or damaged: a zip archive (the PyTorch >= 1.6 format) without "
                            "its directory")
    if start[:1] != b"\x80":  # every pickle torch wrote starts with PROTO
        raise ColorganError("not a PyTorch .pth file (not a pickle stream; tar-format files from "
                            "PyTorch < 0.4 are not read)")
    f.seek(0)
    storages: dict[str, Storage] = {}
    if _unpickle(f, storages, "the magic number") != MAGIC_NUMBER:
        raise ColorganError("not a PyTorch .pth file (wrong magic number)")
    version = _unpickle(f, storages, "the protocol version")
    if version != PROTOCOL_VERSION:
        raise ColorganError(f"unsupported PyTorch protocol version {version} (expected {PROTOCOL_VERSION})")
    sys_info = _unpickle(f, storages, "the system info")
    little_endian = not isinstance(sys_info, dict) or sys_info.get("little_endian", True)
    obj = _unpickle(f, storages, "the pickled state dict")
    keys = _unpickle(f, storages, "the list of storage keys")
    if not isinstance(keys, list):
        raise ColorganError("corrupt: the list of storage keys is missing")
    for key in keys:
        storage = storages.get(str(key))
        if storage is None:
            raise ColorganError(f"corrupt: storage {key} is listed but no tensor uses it")
        (count,) = struct.unpack("<q", _read_exactly(f, 8, f"the size of storage {key}"))
        if count != storage.numel:
            raise ColorganError(f"corrupt: storage {key} holds {count} elements, its tensors "
                                f"expect {storage.numel}")
        storage.data = _as_array(_read_exactly(f, count * storage.type.dtype.itemsize, f"storage {key}"),
                                 storage.type.dtype, little_endian)
    return obj


def _load_zip(path: Path) -> object:
    """The object of a zip-format file (torch.save from PyTorch 1.6 on), with every storage read."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if not pickles:
            raise ColorganError("a zip file without data.pkl: not a PyTorch .pth file")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = prefix + "byteorder"
        little_endian = byteorder not in names or archive.read(byteorder).strip() == b"little"
        storages: dict[str, Storage] = {}
        obj = _unpickle(io.BytesIO(archive.read(pickles[0])), storages, pickles[0])
        for key, storage in storages.items():
            member = f"{prefix}data/{key}"
            if member not in names:
                raise ColorganError(f"corrupt: storage {key} is missing from the archive")
            raw = archive.read(member)
            need = storage.numel * storage.type.dtype.itemsize
            if len(raw) < need:
                raise ColorganError(f"truncated: storage {key} has {len(raw)} bytes, needs {need}")
            storage.data = _as_array(raw[:need], storage.type.dtype, little_endian)
    return obj


def _unpickle(f, storages: dict[str, Storage], what: str) -> object:
    """The next pickle of `f`; `what` names it in the error if it is cut short or damaged."""
    try:
        return StateDictUnpickler(f, storages).load()
    except EOFError:
        raise ColorganError(f"truncated: the file ends before or inside {what}") from None
    except pickle.UnpicklingError as e:
        if "truncated" in str(e):
            raise ColorganError(f"truncated: the file ends inside {what}") from None
        raise ColorganError(f"corrupt: {what} cannot be unpickled ({e})") from None


def _read_exactly(f, n: int, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise ColorganError(f"truncated: the file ends inside {what} ({len(data)} of {n} bytes)")
    return data


def _as_array(raw: bytes, dtype: np.dtype, little_endian: bool) -> np.ndarray:
    array = np.frombuffer(raw, dtype if little_endian else dtype.newbyteorder(">"))
    return array.astype(dtype.newbyteorder("="), copy=False)


def _tensors_of(obj) -> dict[str, np.ndarray]:
    """The tensors of a loaded state dict as arrays; non-tensor entries (none in a plain state dict) dropped."""
    if isinstance(obj, dict) and not any(isinstance(v, TensorRef) for v in obj.values()):
        for wrapper in ("state_dict", "model"):
            if isinstance(obj.get(wrapper), dict):
                obj = obj[wrapper]
                break
    if not isinstance(obj, dict):
        raise ColorganError(f"holds a {type(obj).__name__}, not a state dict")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, TensorRef)}
    if not tensors:
        raise ColorganError("holds no tensors")
    arrays = {}
    for name, ref in tensors.items():
        if ref.storage.data is None:
            raise ColorganError(f"corrupt: the data of tensor {name} is missing")
        try:
            arrays[name] = ref.to_array()
        except ValueError as e:
            raise ColorganError(f"corrupt: tensor {name}: {e}") from None
    return arrays

"""A pickle reader that builds data, never code.

Training tools pickle their state: DeepFaceLab's ``*_data.dat``, the
``data.pkl`` inside every PyTorch checkpoint. Unpickling normally imports and
calls whatever the file names, so a hostile file runs code. This reader answers
every global the file asks for from a fixed table of harmless stand-ins and
imports nothing:

* NumPy arrays, dtypes and scalars → :class:`ArrayInfo` (dtype and shape only;
  the array bytes are dropped), :class:`NumpyDType`, plain Python numbers;
* PyTorch tensors and storages → :class:`TensorInfo` / :class:`StorageInfo`
  (dtype, shape, storage key), without importing torch;
* ``collections.OrderedDict``, sets, and the plain attribute holders training
  code stores (``argparse.Namespace``, Lightning's ``AttributeDict``) → dicts.

Anything else raises :class:`~amber.errors.UnsafePickle` naming the file and the
global — unless the caller asks for ``lenient=True``, where it becomes an inert
:class:`Unknown` (still never imported nor called) and its name is listed in
:attr:`Loaded.refused`. Any other damage in the stream raises
:class:`~amber.errors.InvalidInput`.
"""

from __future__ import annotations

import io
import math
import pickle
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from amber.errors import AmberError, InvalidInput, UnsafePickle
from amber.formats import dtypes

MAX_PICKLE = 256 << 20  # a metadata pickle larger than this is not read


@dataclass
class NumpyDType:
    """A NumPy dtype as pickled: ``numpy.dtype('f4', False, True)`` plus its state."""

    code: str = ""
    byteorder: str = "="

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) > 1 and isinstance(state[1], str):
            self.byteorder = state[1]

    @property
    def name(self) -> str:
        return dtypes.numpy_name(self.code) or self.code


@dataclass
class ArrayInfo:
    """What a pickled NumPy array holds, without its bytes."""

    dtype: str = ""
    shape: tuple[int, ...] = ()

    def __setstate__(self, state: Any) -> None:
        # ndarray state: (version, shape, dtype, is_fortran, raw data)
        if isinstance(state, tuple) and len(state) == 5:
            self.shape = _shape(state[1])
            self.dtype = _dtype_name(state[2])

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class StorageInfo:
    """One PyTorch storage record of a checkpoint (``data/<key>`` in the zip)."""

    key: str
    dtype: str
    numel: int


@dataclass(frozen=True)
class TensorInfo:
    """A PyTorch tensor: a view of ``shape`` into a storage."""

    dtype: str
    shape: tuple[int, ...]
    storage: StorageInfo
    offset: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class TorchStorageType:
    dtype: str


class Unknown:
    """Stand-in for a global outside the table (lenient mode only). Inert."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> Unknown:
        return Unknown()

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, item: Any) -> None:
        pass

    def extend(self, items: Any) -> None:
        pass


class AttrDict(dict[str, Any]):
    """Plain stand-in for dict subclasses and attribute holders."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.update(state)


@dataclass
class Loaded:
    """What :func:`load_with_storages` read.

    ``value`` is the object; ``storages`` every PyTorch storage record by key;
    ``refused`` the globals (and persistent ids) outside the table that lenient
    mode replaced with :class:`Unknown`, in order of first use.
    """

    value: Any
    storages: dict[str, StorageInfo] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)


def load(data: bytes, path: str, *, lenient: bool = False) -> Any:
    """Unpickle ``data`` (the bytes of the file at ``path``) into plain data and stand-ins.

    Takes bytes, not a file: reading from memory, a length field that lies
    cannot make the reader allocate more than the pickle's own size.
    """
    return load_with_storages(data, path, lenient=lenient).value


def load_with_storages(data: bytes, path: str, *, lenient: bool = False) -> Loaded:
    """Like :func:`load`, also returning every PyTorch storage record by key."""
    reader = _Reader(io.BytesIO(data), path, lenient)
    try:
        value = reader.load()
    except AmberError:
        raise
    except Exception as exc:  # any damage in a hostile stream ends the same way
        raise InvalidInput(f"'{path}' is not a readable pickle ({type(exc).__name__}: {exc})") from None
    return Loaded(value, reader.storages, reader.refused)


class _Reader(pickle._Unpickler):
    """The pure-Python unpickler: its memo is a dict, so a hostile memo index
    (``LONG_BINPUT 0x40000000``) costs nothing, where the C one allocates an
    array that large. About three times slower; metadata pickles are small."""

    def __init__(self, stream: BinaryIO, path: str, lenient: bool) -> None:
        super().__init__(stream)
        self.path = path
        self.lenient = lenient
        self.storages: dict[str, StorageInfo] = {}
        self.refused: list[str] = []

    def _refuse(self, what: str) -> None:
        if not self.lenient:
            raise UnsafePickle(self.path, what)
        if what not in self.refused:
            self.refused.append(what)

    def find_class(self, module: str, name: str) -> Any:
        module = _PY2_MODULES.get(module, module)  # protocol 2 writes Python 2 names
        allowed = _allowed(module, name)
        if allowed is not None:
            return allowed
        self._refuse(f"{module}.{name}")
        return Unknown

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage":
            _, kind, key, _location, numel = pid
            dtype = kind.dtype if isinstance(kind, TorchStorageType) else "uint8"
            info = StorageInfo(str(key), dtype, int(numel))
            self.storages[info.key] = info
            return info
        tag = pid[0] if isinstance(pid, tuple) and pid else type(pid).__name__
        self._refuse(f"a persistent object of kind {tag!r}")
        return Unknown()


_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}


def _allowed(module: str, name: str) -> Any:
    """The stand-in for ``module.name``, or None if it is not in the table."""
    full = f"{module}.{name}"
    if full in _TABLE:
        return _TABLE[full]
    if module == "torch" and name in dtypes.TORCH_STORAGES:
        return TorchStorageType(dtypes.TORCH_STORAGES[name])
    if module == "torch" and name in dtypes.TORCH_DTYPES:
        return name
    return None


# --- NumPy -------------------------------------------------------------------


def _np_dtype(code: Any, align: Any = False, copy: Any = True) -> NumpyDType:
    return NumpyDType(code if isinstance(code, str) else str(code))


def _np_reconstruct(subtype: Any, shape: Any, dtype: Any) -> ArrayInfo:
    return ArrayInfo()


def _np_frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any = "C") -> ArrayInfo:
    return ArrayInfo(_dtype_name(dtype), _shape(shape))


_SCALAR_FORMATS = {"f": "efd", "i": "bhiq", "u": "BHIQ"}


def _np_scalar(dtype: Any, data: Any = None) -> Any:
    """A NumPy scalar as a Python number (the loss values DeepFaceLab keeps)."""
    if not isinstance(dtype, NumpyDType) or not isinstance(data, bytes):
        return None
    kind = dtype.code.lstrip("<>|=")[:1]
    if kind == "b" and len(data) == 1:
        return data != b"\x00"
    sizes = {"f": (2, 4, 8), "i": (1, 2, 4, 8), "u": (1, 2, 4, 8)}.get(kind)
    if sizes is None or len(data) not in sizes:
        return None
    letter = _SCALAR_FORMATS[kind][sizes.index(len(data))]
    order = ">" if dtype.byteorder == ">" or dtype.code.startswith(">") else "<"
    return struct.unpack(order + letter, data)[0]


def _codecs_encode(text: Any, encoding: Any = "utf-8") -> bytes:
    # protocol 2 pickles bytes as _codecs.encode(str, 'latin1')
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "iso-8859-1"):
        raise InvalidInput("a pickle asked _codecs.encode for something other than latin-1 bytes")
    return text.encode("latin1")


def _bytes(*args: Any) -> bytes:
    """``bytes()`` as protocol 2 pickles ``b''``; never ``bytes(n)``, which allocates n bytes."""
    if not args:
        return b""
    if isinstance(args[0], (bytes, bytearray, list)) and len(args) == 1:
        return bytes(args[0])
    if isinstance(args[0], str) and len(args) == 2:
        return _codecs_encode(args[0], args[1])
    raise InvalidInput("a pickle asked for bytes of an unexpected kind")


def _bytearray(*args: Any) -> bytearray:
    return bytearray(_bytes(*args))


# --- PyTorch -----------------------------------------------------------------


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any = None, *rest: Any) -> TensorInfo:
    if not isinstance(storage, StorageInfo):
        storage = StorageInfo("", "unknown", 0)
    return TensorInfo(storage.dtype, _shape(size), storage, int(offset))


def _rebuild_parameter(data: Any, *rest: Any) -> Any:
    return data


def _torch_device(kind: Any, index: Any = None) -> str:
    return f"{kind}:{index}" if index is not None else str(kind)


def _dtype_name(value: Any) -> str:
    if isinstance(value, NumpyDType):
        return value.name
    return value if isinstance(value, str) else ""


def _shape(value: Any) -> tuple[int, ...]:
    if isinstance(value, (tuple, list)) and all(isinstance(v, int) for v in value):
        return tuple(value)
    return ()


_NUMPY_CORE = ("numpy.core", "numpy._core")
_TABLE: dict[str, Callable[..., Any] | type] = {
    **{f"{core}.multiarray._reconstruct": _np_reconstruct for core in _NUMPY_CORE},
    **{f"{core}.multiarray.scalar": _np_scalar for core in _NUMPY_CORE},
    **{f"{core}.numeric._frombuffer": _np_frombuffer for core in _NUMPY_CORE},
    "numpy.ndarray": ArrayInfo,
    "numpy.dtype": _np_dtype,
    "_codecs.encode": _codecs_encode,
    "collections.OrderedDict": OrderedDict,
    "builtins.set": set,
    "builtins.frozenset": frozenset,
    "builtins.bytes": _bytes,
    "builtins.bytearray": _bytearray,
    "builtins.complex": complex,
    "argparse.Namespace": AttrDict,
    "pytorch_lightning.utilities.parsing.AttributeDict": AttrDict,
    "lightning.fabric.utilities.data.AttributeDict": AttrDict,
    "lightning_fabric.utilities.data.AttributeDict": AttrDict,
    "torch._utils._rebuild_tensor": _rebuild_tensor,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
    "torch.Size": tuple,
    "torch.device": _torch_device,
}

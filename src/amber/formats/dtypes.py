"""Element types as the formats spell them, reduced to one vocabulary.

Every format names its dtypes its own way (safetensors ``F32``, NumPy ``<f4``,
PyTorch ``FloatStorage``, GGUF type 0). They all map to NumPy-style names
(``float32``); :func:`itemsize_hint` then says whether byte grouping helps.
"""

from __future__ import annotations

import re

# floats: the element sizes the store's byte-grouping codec is for
FLOAT_SIZES = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}

_NUMPY_KINDS = {"f": "float", "i": "int", "u": "uint", "c": "complex"}
_NUMPY_CODE = re.compile(r"^[<>|=]?([fiucbVSUOMm])(\d+)$")


def itemsize_hint(dtype: str | None) -> int:
    """2, 4 or 8 for float dtypes (worth byte grouping), 0 for anything else."""
    return FLOAT_SIZES.get(dtype or "", 0)


def numpy_name(descr: str) -> str | None:
    """``'<f4'`` → ``'float32'``, ``'|b1'`` → ``'bool'``; None if not a simple type code."""
    match = _NUMPY_CODE.match(descr)
    if match is None:
        return None
    kind, size = match.group(1), int(match.group(2))
    if kind == "b" and size == 1:
        return "bool"
    if kind in _NUMPY_KINDS:
        return f"{_NUMPY_KINDS[kind]}{size * 8}"
    return descr.lstrip("<>|=")


def is_numpy_code(text: str) -> bool:
    """True for a NumPy type code as dtypes pickle it (``'f4'``, ``'<i8'``)."""
    return _NUMPY_CODE.match(text) is not None


# PyTorch storage classes as checkpoints name them (torch.FloatStorage, ...)
TORCH_STORAGES = {
    "DoubleStorage": "float64",
    "FloatStorage": "float32",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128",
    "QInt8Storage": "qint8",
    "QUInt8Storage": "quint8",
    "QInt32Storage": "qint32",
    "UntypedStorage": "uint8",
}

# PyTorch dtypes pickled as globals (torch.float32, ...)
TORCH_DTYPES = frozenset(
    {
        "float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool",
        "complex64", "complex128", "float8_e4m3fn", "float8_e5m2", "uint16", "uint32", "uint64",
        "double", "float", "half", "long", "int", "short",
    }
)  # fmt: skip

# safetensors header dtypes
SAFETENSORS = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
    "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8",
    "U64": "uint64", "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
}  # fmt: skip

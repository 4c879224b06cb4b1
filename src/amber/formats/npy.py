"""NumPy ``.npy`` (a header, then the raw array) and ``.npz`` (a zip of them).

The header is a Python dict literal (``descr``, ``fortran_order``, ``shape``),
read with :func:`ast.literal_eval`, which evaluates literals only. In an
``.npz`` every stored member is located through the zip directory; a deflated
member is one opaque span of its compressed bytes.
"""

from __future__ import annotations

import ast
import struct
import zipfile
import zlib
from io import BytesIO
from typing import Any, BinaryIO

from amber.formats import dtypes, sniff
from amber.formats.regions import Malformed
from amber.formats.tensors import Tensor, Weights
from amber.formats.zipmembers import Member

MAGIC = sniff.NPY_MAGIC
MAX_HEADER = 1 << 20


looks_like = sniff.is_npy


def read(f: BinaryIO, size: int) -> Weights:
    """The single array of the ``.npy`` file ``f``."""
    f.seek(0)
    dtype, shape, data = _header(f, 0, size)
    return Weights("numpy", (Tensor("array", dtype, shape, data, size - data),))


def read_npz(f: BinaryIO, size: int, members: list[Member]) -> Weights:
    """The arrays of the ``.npz`` zip ``f``, given its members."""
    tensors = []
    for member in members:
        if not member.name.endswith(".npy"):
            continue
        name = member.name[: -len(".npy")]
        if member.stored:
            dtype, shape, data = _header(f, member.data, member.data + member.size)
            tensors.append(Tensor(name, dtype, shape, data, member.data + member.size - data))
        else:
            dtype, shape = _packed_header(f, member.name)
            tensors.append(Tensor(name, dtype, shape, member.data, member.size, packed=True))
    return Weights("numpy", tuple(tensors))


def _header(f: BinaryIO, start: int, end: int) -> tuple[str, tuple[int, ...], int]:
    """(dtype, shape, data offset) of the .npy whose magic is at ``start``."""
    f.seek(start)
    prefix = f.read(12)
    if len(prefix) < 10 or not prefix.startswith(MAGIC):
        raise Malformed("not a .npy header")
    major = prefix[6]
    if major == 1:
        (length,), text_start = struct.unpack_from("<H", prefix, 8), start + 10
    elif major in (2, 3) and len(prefix) == 12:
        (length,), text_start = struct.unpack_from("<I", prefix, 8), start + 12
    else:
        raise Malformed(f".npy format version {major} is not known")
    if length > MAX_HEADER or text_start + length > end:
        raise Malformed(".npy header longer than the file")
    f.seek(text_start)
    dtype, shape = _parse(f.read(length))
    return dtype, shape, text_start + length


def _parse(text: bytes) -> tuple[str, tuple[int, ...]]:
    try:
        header: Any = ast.literal_eval(text.decode("utf-8"))
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError) as exc:
        raise Malformed(f".npy header is not a literal: {exc}") from None
    if not isinstance(header, dict):
        raise Malformed(".npy header is not a dict")
    descr, shape = header.get("descr"), header.get("shape")
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise Malformed(".npy header has no valid shape")
    dtype = dtypes.numpy_name(descr) if isinstance(descr, str) else None
    return dtype or "structured", shape


def _packed_header(f: BinaryIO, name: str) -> tuple[str, tuple[int, ...]]:
    """dtype and shape of a deflated member, from its first decompressed bytes."""
    try:
        with zipfile.ZipFile(f) as archive, archive.open(name) as member:
            head = member.read(MAX_HEADER + 12)
    except (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError) as exc:
        raise Malformed(f"unreadable .npz member {name!r}: {exc}") from None
    dtype, shape, _ = _header(BytesIO(head), 0, len(head))
    return dtype, shape

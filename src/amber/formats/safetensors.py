"""safetensors: an 8-byte little-endian header length, a JSON header, the data.

Each header entry names a tensor's dtype, shape and ``data_offsets`` (begin,
end) relative to the first byte after the header. Only the header is read.
"""

from __future__ import annotations

import json
import struct
from typing import Any, BinaryIO

from amber.formats import dtypes, sniff
from amber.formats.regions import Malformed
from amber.formats.tensors import Tensor, Weights

MAX_HEADER = sniff.SAFETENSORS_MAX_HEADER
_LENGTH = struct.Struct("<Q")


looks_like = sniff.is_safetensors


def read(f: BinaryIO, size: int) -> Weights:
    """The tensors of the safetensors file ``f`` (``size`` bytes)."""
    f.seek(0)
    (length,) = _LENGTH.unpack(_exact(f, 8))
    if length > min(MAX_HEADER, size - 8):
        raise Malformed("safetensors header longer than the file")
    try:
        header = json.loads(_exact(f, length))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Malformed(f"safetensors header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise Malformed("safetensors header is not a JSON object")
    base = 8 + length
    tensors = [_tensor(name, entry, base, size) for name, entry in header.items() if name != "__metadata__"]
    meta = header.get("__metadata__")
    info = {"metadata": meta} if isinstance(meta, dict) else {}
    return Weights("safetensors", tuple(sorted(tensors, key=lambda t: t.offset)), info)


def _tensor(name: str, entry: Any, base: int, size: int) -> Tensor:
    if not isinstance(entry, dict):
        raise Malformed(f"safetensors entry {name!r} is not an object")
    kind, shape, offsets = entry.get("dtype"), _ints(entry.get("shape")), _ints(entry.get("data_offsets"))
    if not isinstance(kind, str) or shape is None or offsets is None or len(offsets) != 2:
        raise Malformed(f"safetensors entry {name!r} lacks dtype, shape or data_offsets")
    begin, end = offsets
    if not 0 <= begin <= end or base + end > size:
        raise Malformed(f"safetensors tensor {name!r} lies outside the file")
    dtype = dtypes.SAFETENSORS.get(kind, kind.lower())
    return Tensor(name, dtype, shape, base + begin, end - begin)


def _ints(value: Any) -> tuple[int, ...] | None:
    """``value`` as a tuple of non-negative ints, or None if it is not a list of them."""
    if not isinstance(value, list) or not all(type(v) is int and v >= 0 for v in value):
        return None
    return tuple(value)


def _exact(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise Malformed("safetensors file cut short")
    return data

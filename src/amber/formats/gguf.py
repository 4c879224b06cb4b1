"""GGUF (llama.cpp): a header of key/value metadata and tensor infos, then data.

Layout (little-endian): ``GGUF``, version (u32, 2 or 3), tensor count (u64),
key/value count (u64); the key/values; per tensor its name, dims, ggml type and
offset (relative to the data section); the data section starts at the next
multiple of ``general.alignment`` (default 32). Sizes of quantized types come
from their block size and bytes per block.
"""

from __future__ import annotations

import math
import struct
from typing import Any, BinaryIO

from amber.formats import sniff
from amber.formats.regions import Malformed
from amber.formats.tensors import Tensor, Weights

MAGIC = sniff.GGUF_MAGIC
MAX_COUNT = 1 << 20
MAX_STRING = 64 << 20
_DEFAULT_ALIGNMENT = 32

# ggml type id -> (name, elements per block, bytes per block)
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("float32", 1, 4), 1: ("float16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 40),
    10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292), 16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98), 19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136), 24: ("int8", 1, 1), 25: ("int16", 1, 2),
    26: ("int32", 1, 4), 27: ("int64", 1, 8), 28: ("float64", 1, 8), 29: ("IQ1_M", 256, 56),
    30: ("bfloat16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66), 39: ("MXFP4", 32, 17),
}  # fmt: skip

# metadata value types: id -> struct format (8 string, 9 array are special)
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_KEPT_SUFFIXES = (".context_length", ".block_count", ".embedding_length")


looks_like = sniff.is_gguf


class _Cursor:
    def __init__(self, f: BinaryIO, size: int) -> None:
        self.f, self.size = f, size

    def unpack(self, fmt: str) -> Any:
        n = struct.calcsize(fmt)
        data = self.f.read(n)
        if len(data) != n:
            raise Malformed("GGUF header cut short")
        return struct.unpack(fmt, data)[0]

    def string(self, keep: bool = True) -> str:
        length = self.unpack("<Q")
        if length > MAX_STRING or self.f.tell() + length > self.size:
            raise Malformed("GGUF string runs past the end of the file")
        if not keep:
            self.f.seek(length, 1)
            return ""
        return self.f.read(length).decode("utf-8", errors="replace")

    def value(self, kind: int, keep: bool, depth: int = 0) -> Any:
        if kind in _SCALARS:
            return self.unpack(_SCALARS[kind])
        if kind == _STRING:
            return self.string(keep)
        if kind == _ARRAY and depth < 4:
            item_kind, count = self.unpack("<I"), self.unpack("<Q")
            if count > self.size:
                raise Malformed("GGUF array longer than the file")
            if item_kind in _SCALARS:  # skip fixed-size items in one seek
                self.f.seek(count * struct.calcsize(_SCALARS[item_kind]), 1)
            else:
                for _ in range(count):
                    self.value(item_kind, False, depth + 1)
            return None
        raise Malformed(f"GGUF value type {kind} is not known")


def read(f: BinaryIO, size: int) -> Weights:
    """The tensors and general metadata of the GGUF file ``f``."""
    f.seek(0)
    cursor = _Cursor(f, size)
    if f.read(4) != MAGIC:
        raise Malformed("not a GGUF file")
    version = cursor.unpack("<I")
    if version not in (2, 3):
        raise Malformed(f"GGUF version {version} is not supported")
    tensor_count, kv_count = cursor.unpack("<Q"), cursor.unpack("<Q")
    if tensor_count > MAX_COUNT or kv_count > MAX_COUNT:
        raise Malformed("GGUF counts are implausible")
    info: dict[str, Any] = {"version": version}
    for _ in range(kv_count):
        key = cursor.string()
        kept = key.startswith("general.") or key.endswith(_KEPT_SUFFIXES)
        value = cursor.value(cursor.unpack("<I"), kept)
        if kept and value is not None:
            info[key] = value
    raw = [_tensor_info(cursor) for _ in range(tensor_count)]
    alignment = info.get("general.alignment", _DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment % 8:
        raise Malformed("GGUF alignment is not a positive multiple of 8")
    base = -(-f.tell() // alignment) * alignment
    return Weights("gguf", _located(raw, base, size), info)


def _tensor_info(cursor: _Cursor) -> tuple[str, tuple[int, ...], int, int]:
    name = cursor.string()
    n_dims = cursor.unpack("<I")
    if n_dims > 8:
        raise Malformed("GGUF tensor has too many dimensions")
    shape = tuple(cursor.unpack("<Q") for _ in range(n_dims))
    return name, shape, cursor.unpack("<I"), cursor.unpack("<Q")


def _located(raw: list[tuple[str, tuple[int, ...], int, int]], base: int, size: int) -> tuple[Tensor, ...]:
    """Tensors with absolute offsets; an unknown type's size runs to the next tensor."""
    ordered = sorted(raw, key=lambda t: t[3])
    out = []
    for i, (name, shape, kind, offset) in enumerate(ordered):
        start = base + offset
        limit = base + ordered[i + 1][3] if i + 1 < len(ordered) else size
        dtype, block, block_bytes = GGML_TYPES.get(kind, (f"ggml_type_{kind}", 0, 0))
        numel = math.prod(shape)
        length = numel // block * block_bytes if block else limit - start
        if start + length > limit or (block and numel % block):
            raise Malformed(f"GGUF tensor {name!r} does not fit where it is placed")
        out.append(Tensor(name, dtype, shape, start, length))
    return tuple(out)

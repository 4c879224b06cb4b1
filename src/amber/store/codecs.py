"""Chunk codecs: how a chunk's raw bytes become the bytes on disk, and back.

An encoded chunk is a 16-byte header followed by the payload:

    0  4  magic b"AMB1"
    4  1  codec  (RAW, ZSTD, GROUPED: byte planes then zstd, DELTA: see below)
    5  1  item size for GROUPED and DELTA (2, 4 or 8), else 0
    6  2  reserved, zero
    8  8  raw size, little-endian

A DELTA chunk has the 32-byte BLAKE3 digest of its base chunk after the header,
then zstd(byte planes(raw XOR base)). The base is always a whole (non-delta)
chunk of the same size, so decoding costs at most two chunk reads whatever the
version's age. Decoding always ends with a hash check of the raw bytes, done by
the store.
"""

from __future__ import annotations

import struct
import threading

import numpy as np
import zstandard

from amber.errors import Corruption

MAGIC = b"AMB1"
HEADER = struct.Struct("<4sBBHQ")
RAW, ZSTD, GROUPED, DELTA = 0, 1, 2, 3
CODEC_NAMES = {RAW: "raw", ZSTD: "zstd", GROUPED: "grouped-zstd", DELTA: "xor-delta"}
BASE_SIZE = 32
_DELTA_ACCEPT = 0.5  # a delta this small (vs raw) is taken without trying the whole chunk
MAX_CHUNK = 1 << 30  # larger than any chunk or manifest Amber writes; a bigger header is damage
_KEEP_RAW_ABOVE = 0.97  # compressed/raw above this: store raw, decoding is then a copy

_local = threading.local()


def _compressor(level: int) -> zstandard.ZstdCompressor:
    key = f"c{level}"
    comp = getattr(_local, key, None)
    if comp is None:
        comp = zstandard.ZstdCompressor(level=level)
        setattr(_local, key, comp)
    return comp


def _decompressor() -> zstandard.ZstdDecompressor:
    dec = getattr(_local, "d", None)
    if dec is None:
        dec = _local.d = zstandard.ZstdDecompressor()
    return dec


def group_bytes(raw: bytes | memoryview, itemsize: int) -> bytes:
    """Byte planes: all first bytes of the elements, then all second bytes, ...

    A trailing part shorter than one element is appended unchanged.
    """
    whole = len(raw) - len(raw) % itemsize
    arr = np.frombuffer(raw, dtype=np.uint8, count=whole)
    planes = arr.reshape(-1, itemsize).T.tobytes()
    return planes + bytes(raw[whole:])


def ungroup_bytes(data: bytes, itemsize: int) -> bytes:
    whole = len(data) - len(data) % itemsize
    planes = np.frombuffer(data, dtype=np.uint8, count=whole).reshape(itemsize, -1)
    elems = np.empty((planes.shape[1], itemsize), dtype=np.uint8)
    for i in range(itemsize):  # one plane per column: ~3x faster than a transposed copy
        elems[:, i] = planes[i]
    return elems.tobytes() + data[whole:]


def xor(a: bytes | memoryview, b: bytes | memoryview) -> bytes:
    kind = np.uint64 if len(a) % 8 == 0 else np.uint8
    return bytes(np.bitwise_xor(np.frombuffer(a, dtype=kind), np.frombuffer(b, dtype=kind)).tobytes())


def encode_delta(
    raw: bytes | memoryview, itemsize: int, base_id: str, base: bytes, base_stored: int | None = None
) -> tuple[int, list[bytes]] | None:
    """A DELTA encoding of ``raw`` against ``base``, or None if a whole chunk is smaller.

    ``base_stored`` (the base's own encoded size) stands in for what coding
    ``raw`` whole would give, so most chunks are encoded once, not twice.
    """
    if len(base) != len(raw) or itemsize not in (2, 4, 8):
        return None
    payload = _compressor(1).compress(group_bytes(xor(raw, base), itemsize))
    delta = [HEADER.pack(MAGIC, DELTA, itemsize, 0, len(raw)), bytes.fromhex(base_id), payload]
    if len(payload) < len(raw) * _DELTA_ACCEPT:
        return DELTA, delta
    if base_stored is not None and len(payload) + HEADER.size + BASE_SIZE < base_stored * 0.97:
        return DELTA, delta  # clearly under what a whole chunk like the base costs
    codec, whole = encode(raw, itemsize)
    if sum(map(len, whole)) <= sum(map(len, delta)):
        return codec, whole
    return DELTA, delta


def encode(raw: bytes | memoryview, itemsize: int = 0) -> tuple[int, list[bytes]]:
    """Encode ``raw``; ``itemsize`` > 1 marks float elements worth grouping.

    Returns the codec and the parts to write (header first).
    """
    size = len(raw)
    if itemsize in (2, 4, 8) and size >= 4 * itemsize:
        payload = _compressor(1).compress(group_bytes(raw, itemsize))
        codec = GROUPED
    else:
        payload = _compressor(3).compress(raw)
        codec, itemsize = ZSTD, 0
    if len(payload) > size * _KEEP_RAW_ABOVE:
        return RAW, [HEADER.pack(MAGIC, RAW, 0, 0, size), bytes(raw)]
    return codec, [HEADER.pack(MAGIC, codec, itemsize, 0, size), payload]


def read_header(blob: bytes) -> tuple[int, int, int]:
    """(codec, itemsize, raw size) of an encoded chunk, or Corruption."""
    if len(blob) < HEADER.size:
        raise Corruption("chunk is shorter than its header")
    magic, codec, itemsize, _, size = HEADER.unpack_from(blob)
    if magic != MAGIC or codec not in CODEC_NAMES or size > MAX_CHUNK:
        raise Corruption("chunk header is damaged")
    return codec, itemsize, size


def base_of(blob: bytes) -> str | None:
    """The id of the chunk a DELTA chunk is coded against (None for whole chunks)."""
    codec, _, _ = read_header(blob)
    if codec != DELTA:
        return None
    if len(blob) < HEADER.size + BASE_SIZE:
        raise Corruption("delta chunk is shorter than its header")
    return blob[HEADER.size : HEADER.size + BASE_SIZE].hex()


def decode(blob: bytes, base: bytes | None = None) -> bytes:
    """The raw bytes of an encoded chunk; a DELTA chunk needs its base's raw bytes."""
    codec, itemsize, size = read_header(blob)
    body = memoryview(blob)[HEADER.size + (BASE_SIZE if codec == DELTA else 0) :]
    try:
        if codec == RAW:
            raw = bytes(body)
        else:
            raw = _decompressor().decompress(body, max_output_size=size)
            if codec in (GROUPED, DELTA):
                raw = ungroup_bytes(raw, itemsize)
            if codec == DELTA:
                if base is None or len(base) != size:
                    raise Corruption("delta chunk's base is missing or has the wrong size")
                raw = xor(raw, base)
    except zstandard.ZstdError as exc:
        raise Corruption(f"chunk does not decompress: {exc}") from None
    if len(raw) != size:
        raise Corruption(f"chunk decodes to {len(raw)} bytes, header says {size}")
    return raw

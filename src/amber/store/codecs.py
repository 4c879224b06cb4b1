"""Chunk codecs: how a chunk's raw bytes become the bytes on disk, and back.

An encoded chunk is a 16-byte header followed by the payload:

    0  4  magic b"AMB1"
    4  1  codec  (RAW, ZSTD, GROUPED: byte planes then zstd, XOR_DELTA, SUB_DELTA)
    5  1  item size for GROUPED and the deltas (2, 4 or 8), else 0
    6  2  reserved, zero
    8  8  raw size, little-endian

A delta chunk has the 32-byte BLAKE3 digest of its base chunk after the header,
then zstd(byte planes(d)), where d is raw XOR base (XOR_DELTA) or the wrapping
difference raw − base of the elements read as unsigned integers (SUB_DELTA).
The base is always a whole (non-delta) chunk of the same size, so decoding
costs at most two chunk reads whatever the version's age. Decoding always ends
with a hash check of the raw bytes, done by the store.

Which delta wins depends on how a tensor moves: weights nudged in their low
mantissa bits XOR to mostly zero bytes; a second moment that grows or shrinks
by a few percent stays a small number as a difference but scatters flipped
bits as an XOR. ``encode_delta`` tries both, and the whole chunk, on a sample
and codes the chunk once, with the winner.

numpy and zstandard are imported on first use, so commands that code no chunk
start without them.
"""

from __future__ import annotations

import struct
import threading
from typing import TYPE_CHECKING

from amber.errors import Corruption

if TYPE_CHECKING:
    import zstandard

MAGIC = b"AMB1"
HEADER = struct.Struct("<4sBBHQ")
RAW, ZSTD, GROUPED, XOR_DELTA, SUB_DELTA = 0, 1, 2, 3, 4
DELTAS = (XOR_DELTA, SUB_DELTA)
CODEC_NAMES = {RAW: "raw", ZSTD: "zstd", GROUPED: "grouped-zstd", XOR_DELTA: "xor-delta", SUB_DELTA: "sub-delta"}
BASE_SIZE = 32
_DELTA_ACCEPT = 0.5  # a delta this small (vs raw) is taken without trying the whole chunk
MAX_CHUNK = 1 << 30  # larger than any chunk or manifest Amber writes; a bigger header is damage
_KEEP_RAW_ABOVE = 0.97  # compressed/raw above this: store raw, decoding is then a copy
_SAMPLE = 64 << 10  # bytes per sample window; four windows decide how a large chunk is coded
_UNSIGNED = {2: "<u2", 4: "<u4", 8: "<u8"}

_local = threading.local()
Buffer = bytes | bytearray | memoryview


def _compressor(kind: str) -> zstandard.ZstdCompressor:
    """One compressor per thread and kind: "float" for byte planes, "bytes" for the rest.

    Byte planes of floats are nearly order-0 sources: the exponent plane has few
    distinct values but short, random runs. zstd's fast strategy with 7-byte
    minimum matches and a tiny hash table skips the match search that finds
    nothing there and leaves the work to its entropy coder: about twice the
    speed of level 1 on such planes, and a few per mille smaller. Any zstd
    decoder reads the frames.
    """
    comp = getattr(_local, kind, None)
    if comp is None:
        import zstandard as zstd

        if kind == "float":
            params = zstd.ZstdCompressionParameters(
                strategy=zstd.STRATEGY_FAST, min_match=7, hash_log=6, search_log=1, chain_log=6, window_log=17
            )
            comp = zstd.ZstdCompressor(compression_params=params)
        else:
            comp = zstd.ZstdCompressor(level=3)
        setattr(_local, kind, comp)
    return comp


def _decompressor() -> zstandard.ZstdDecompressor:
    dec = getattr(_local, "d", None)
    if dec is None:
        import zstandard

        dec = _local.d = zstandard.ZstdDecompressor()
    return dec


SCRATCH_MAX = 4 << 20  # the largest piece Amber cuts; a bigger buffer is not kept


def scratch(name: str, size: int) -> memoryview:
    """A per-thread buffer of ``size`` bytes, reused by every call with this name.

    Encoding a chunk makes several chunk-sized intermediates; fresh ones cost
    the kernel a page fault per 4 KiB (a large share of a snapshot's CPU). What
    a scratch buffer holds is dead by the time the same thread asks for it again.
    """
    buf: bytearray | None = getattr(_local, name, None)
    if buf is None or len(buf) < size:
        buf = bytearray(size)
        if size <= SCRATCH_MAX:
            setattr(_local, name, buf)
    return memoryview(buf)[:size]


def group_bytes(raw: Buffer, itemsize: int, out: memoryview | None = None) -> bytearray | memoryview:
    """Byte planes: all first bytes of the elements, then all second bytes, ...

    A trailing part shorter than one element is appended unchanged. With
    ``out`` (at least ``len(raw)`` bytes), the planes are written there.
    """
    import numpy as np

    whole = len(raw) - len(raw) % itemsize
    elems = np.frombuffer(raw, dtype=np.uint8, count=whole).reshape(-1, itemsize)
    dest: bytearray | memoryview = bytearray(len(raw)) if out is None else out[: len(raw)]
    planes = np.frombuffer(dest, dtype=np.uint8, count=whole).reshape(itemsize, -1)
    for i in range(itemsize):  # numpy copies without holding the GIL
        planes[i] = elems[:, i]
    dest[whole:] = raw[whole:]
    return dest


# The functions below fill a bytearray (or ``out``) through a numpy view of it
# rather than returning ndarray.tobytes(): that would be one more copy of every
# chunk, made while holding the GIL, which keeps the other workers waiting.


def ungroup_bytes(data: Buffer, itemsize: int, out: memoryview | None = None) -> bytearray | memoryview:
    import numpy as np

    whole = len(data) - len(data) % itemsize
    planes = np.frombuffer(data, dtype=np.uint8, count=whole).reshape(itemsize, -1)
    dest: bytearray | memoryview = bytearray(len(data)) if out is None else out[: len(data)]
    elems = np.frombuffer(dest, dtype=np.uint8, count=whole).reshape(-1, itemsize)
    for i in range(itemsize):  # one plane per column: ~3x faster than a transposed copy
        elems[:, i] = planes[i]
    dest[whole:] = data[whole:]
    return dest


def xor(a: Buffer, b: Buffer, out: memoryview | None = None) -> bytearray | memoryview:
    import numpy as np

    dest: bytearray | memoryview = bytearray(len(a)) if out is None else out[: len(a)]
    kind = np.uint64 if len(a) % 8 == 0 else np.uint8
    np.bitwise_xor(np.frombuffer(a, dtype=kind), np.frombuffer(b, dtype=kind), out=np.frombuffer(dest, dtype=kind))
    return dest


def subtract(a: Buffer, b: Buffer, itemsize: int, out: memoryview | None = None) -> bytearray | memoryview:
    """Elementwise ``a − b`` modulo 2^(8·itemsize), little-endian; a partial last element is XORed."""
    return _elementwise(a, b, itemsize, add=False, out=out)


def add(a: Buffer, b: Buffer, itemsize: int, out: memoryview | None = None) -> bytearray | memoryview:
    """The inverse of :func:`subtract`: ``add(subtract(a, b), b) == a``."""
    return _elementwise(a, b, itemsize, add=True, out=out)


def _elementwise(
    a: Buffer, b: Buffer, itemsize: int, *, add: bool, out: memoryview | None = None
) -> bytearray | memoryview:
    import numpy as np

    whole = len(a) - len(a) % itemsize
    kind = np.dtype(_UNSIGNED[itemsize])
    x = np.frombuffer(a, dtype=kind, count=whole // itemsize)
    y = np.frombuffer(b, dtype=kind, count=whole // itemsize)
    dest: bytearray | memoryview = bytearray(len(a)) if out is None else out[: len(a)]
    (np.add if add else np.subtract)(x, y, out=np.frombuffer(dest, dtype=kind, count=whole // itemsize))
    dest[whole:] = xor(memoryview(a)[whole:], memoryview(b)[whole:])
    return dest


def _sample(data: Buffer) -> Buffer:
    """Four evenly spaced windows of ``data`` (all of it when it is small)."""
    if len(data) <= 8 * _SAMPLE:
        return data
    step = (len(data) // 4) & ~63
    view = memoryview(data)
    return b"".join(view[i * step : i * step + _SAMPLE] for i in range(4))


def _float_payload(data: Buffer, itemsize: int) -> bytes:
    return _compressor("float").compress(group_bytes(data, itemsize, out=scratch("group", len(data))))


def _delta_parts(kind: int, itemsize: int, size: int, base_id: str, payload: bytes) -> list[bytes]:
    return [HEADER.pack(MAGIC, kind, itemsize, 0, size), bytes.fromhex(base_id), payload]


def _difference(
    kind: int, raw: Buffer, base: Buffer, itemsize: int, out: memoryview | None = None
) -> bytearray | memoryview:
    return xor(raw, base, out) if kind == XOR_DELTA else subtract(raw, base, itemsize, out)


def encode_delta(
    raw: Buffer, itemsize: int, base_id: str, base: Buffer, base_stored: int | None = None
) -> tuple[int, list[bytes]] | None:
    """``raw`` coded against ``base`` (XOR_DELTA or SUB_DELTA), or whole if that is smaller.

    None when ``base`` cannot serve (another size, not a float chunk). The
    three candidates are compared on a sample of the chunk; only the winner is
    coded in full. ``base_stored`` (the base's own encoded size) stands in for
    what coding ``raw`` whole would give, so a delta that comes out larger than
    the sample promised is checked against the whole chunk only when it is
    close to that.
    """
    if len(base) != len(raw) or itemsize not in (2, 4, 8) or not raw:
        return None
    s_raw, s_base = _sample(raw), _sample(base)
    sizes = {kind: len(_float_payload(_difference(kind, s_raw, s_base, itemsize), itemsize)) for kind in DELTAS}
    kind = min(sizes, key=lambda k: sizes[k])
    if len(_float_payload(s_raw, itemsize)) < sizes[kind]:
        return encode(raw, itemsize)
    payload = _float_payload(_difference(kind, raw, base, itemsize, scratch("diff", len(raw))), itemsize)
    delta = _delta_parts(kind, itemsize, len(raw), base_id, payload)
    stored = len(payload) + HEADER.size + BASE_SIZE
    if len(payload) < len(raw) * _DELTA_ACCEPT or (base_stored is not None and stored < base_stored * 0.97):
        return kind, delta
    codec, whole = encode(raw, itemsize)
    if sum(map(len, whole)) <= stored:
        return codec, whole
    return kind, delta


def encode(raw: Buffer, itemsize: int = 0) -> tuple[int, list[bytes]]:
    """Encode ``raw``; ``itemsize`` > 1 marks float elements worth grouping.

    Returns the codec and the parts to write (header first).
    """
    size = len(raw)
    if itemsize in (2, 4, 8) and size >= 4 * itemsize:
        payload = _float_payload(raw, itemsize)
        codec = GROUPED
    else:
        payload = _compressor("bytes").compress(raw)
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
    if codec in (GROUPED, *DELTAS) and itemsize not in (2, 4, 8):
        raise Corruption("chunk header is damaged")
    return codec, itemsize, size


def base_of(blob: bytes) -> str | None:
    """The id of the chunk a delta chunk is coded against (None for whole chunks)."""
    codec, _, _ = read_header(blob)
    if codec not in DELTAS:
        return None
    if len(blob) < HEADER.size + BASE_SIZE:
        raise Corruption("delta chunk is shorter than its header")
    return blob[HEADER.size : HEADER.size + BASE_SIZE].hex()


def decode(blob: bytes, base: Buffer | None = None, out: memoryview | None = None) -> Buffer:
    """The raw bytes of an encoded chunk; a delta chunk needs its base's raw bytes.

    With ``out``, a grouped or delta chunk is decoded into it (the result is a
    view of it; a delta's planes pass through this thread's "planes" scratch).
    """
    codec, itemsize, size = read_header(blob)
    body = memoryview(blob)[HEADER.size + (BASE_SIZE if codec in DELTAS else 0) :]
    raw: Buffer
    if codec == RAW:
        raw = bytes(body)
    else:
        import zstandard

        try:
            raw = _decompressor().decompress(body, max_output_size=size)
        except zstandard.ZstdError as exc:
            raise Corruption(f"chunk does not decompress: {exc}") from None
        if len(raw) != size:
            raise Corruption(f"chunk decodes to {len(raw)} bytes, header says {size}")
        if codec == GROUPED:
            raw = ungroup_bytes(raw, itemsize, out)
        elif codec in DELTAS:
            if base is None or len(base) != size:
                raise Corruption("delta chunk's base is missing or has the wrong size")
            planes = ungroup_bytes(raw, itemsize, None if out is None else scratch("planes", len(raw)))
            raw = xor(planes, base, out) if codec == XOR_DELTA else add(planes, base, itemsize, out)
    if len(raw) != size:
        raise Corruption(f"chunk decodes to {len(raw)} bytes, header says {size}")
    return raw

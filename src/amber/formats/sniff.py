"""What a file is, from its first bytes alone.

The registry asks here, and imports a format's parser only once a file turns
out to be in that format: a folder of safetensors never loads the pickle
machinery, and a command that plans and detects nothing loads no parser.
Each parser module keeps its own ``looks_like``/``is_*`` name for these.
"""

from __future__ import annotations

import struct

HEAD = 16  # the most bytes any check here needs

NPY_MAGIC = b"\x93NUMPY"
GGUF_MAGIC = b"GGUF"
ZIP_MAGIC = b"PK\x03\x04"  # a zip's first local file header
PICKLE_PROTO = 0x80
SAFETENSORS_MAX_HEADER = 100 << 20  # the limit the safetensors library itself enforces
_SAFETENSORS_LENGTH = struct.Struct("<Q")


def is_pickle(head: bytes) -> bool:
    """True for a stream that starts like a protocol 2–5 pickle."""
    return len(head) >= 2 and head[0] == PICKLE_PROTO and 2 <= head[1] <= 5


def is_npy(head: bytes) -> bool:
    return head.startswith(NPY_MAGIC)


def is_gguf(head: bytes) -> bool:
    return head.startswith(GGUF_MAGIC)


def is_zip(head: bytes) -> bool:
    return head[:4] == ZIP_MAGIC


def is_safetensors(head: bytes, size: int) -> bool:
    """True if ``head`` (the first bytes) starts like a safetensors file of ``size`` bytes."""
    if len(head) < 9 or head[8:9] != b"{":
        return False
    length: int = _SAFETENSORS_LENGTH.unpack_from(head)[0]
    return 2 <= length <= min(SAFETENSORS_MAX_HEADER, size - 8)

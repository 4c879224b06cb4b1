"""Dispatch: which format a file is (by its first bytes), which detector a folder fits.

Planning never raises on what a file holds: whatever goes wrong while parsing
(bad header, hostile pickle, truncation, a parser bug), the file is planned as
one content-defined region, and the bytes are stored exactly either way.
"""

from __future__ import annotations

import logging
from typing import BinaryIO

from amber.formats import Detected, Region, gguf, npy, pickled, safetensors, torch_zip, zipmembers
from amber.formats.regions import covers, layout, opaque
from amber.formats.tensors import Weights

_HEAD = 16
_BUFFER = 1 << 16
log = logging.getLogger(__name__)


def plan_regions(path: str, size: int) -> list[Region]:
    if size <= 0:
        return []
    try:
        with open(path, "rb", buffering=_BUFFER) as f:
            regions = _plan(f, size, path)
    except Exception as exc:  # any parse failure at all means "opaque bytes"
        log.debug("planning %s as opaque: %s", path, exc)
        return opaque(size)
    return regions if covers(regions, size) else opaque(size)


def _plan(f: BinaryIO, size: int, path: str) -> list[Region]:
    head = f.read(_HEAD)
    if pickled.is_pickle(head):
        spans, end = pickled.walk(f, size)
        return layout(spans, size, tail_cdc=end < size) if spans else opaque(size)
    weights = read_weights(f, size, path, head)
    return opaque(size) if weights is None else layout(weights.spans(), size)


def read_weights(f: BinaryIO, size: int, path: str, head: bytes | None = None) -> Weights | None:
    """The tensors of a weight file in a format with tensor headers, else None.

    Raises Malformed when the file starts like a known format but is not one.
    """
    if head is None:
        f.seek(0)
        head = f.read(_HEAD)
    if npy.looks_like(head):
        return npy.read(f, size)
    if gguf.looks_like(head):
        return gguf.read(f, size)
    if zipmembers.is_zip(head):
        found = zipmembers.members(f, size)
        if torch_zip.find_pickle(found) is not None:
            return torch_zip.read(f, size, path, found)
        if any(m.name.endswith(".npy") for m in found):
            return npy.read_npz(f, size, found)
        return None
    if safetensors.looks_like(head, size):
        return safetensors.read(f, size)
    return None


def detect(folder: str, *, select: str | None = None) -> Detected:
    from amber.formats.metadata import detect_any

    return detect_any(folder, select=select)

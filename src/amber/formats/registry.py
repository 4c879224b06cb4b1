"""Dispatch: which format a file is (by its first bytes), which detector a folder fits.

Planning never raises on what a file holds: whatever goes wrong while parsing
(bad header, hostile pickle, truncation, a parser bug), the file is planned as
one content-defined region, and the bytes are stored exactly either way.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, BinaryIO

from amber.formats import Detected, Region, sniff
from amber.formats.regions import covers, layout, opaque

if TYPE_CHECKING:
    from amber.formats.tensors import Weights

# A format's parser is imported once a file's first bytes say it is that format (see sniff).
_HEAD = sniff.HEAD
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
    if sniff.is_pickle(head):
        from amber.formats import pickled

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
    if sniff.is_npy(head):
        from amber.formats import npy

        return npy.read(f, size)
    if sniff.is_gguf(head):
        from amber.formats import gguf

        return gguf.read(f, size)
    if sniff.is_zip(head):
        from amber.formats import torch_zip, zipmembers

        found = zipmembers.members(f, size)
        if torch_zip.find_pickle(found) is not None:
            return torch_zip.read(f, size, path, found)
        if any(m.name.endswith(".npy") for m in found):
            from amber.formats import npy

            return npy.read_npz(f, size, found)
        return None
    if sniff.is_safetensors(head, size):
        from amber.formats import safetensors

        return safetensors.read(f, size)
    return None


def detect(folder: str, *, select: str | None = None) -> Detected:
    from amber.formats.metadata import detect_any

    return detect_any(folder, select=select)

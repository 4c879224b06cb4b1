"""From the spans a format parser found to the regions a file is cut into.

A parser reports :class:`Span` s: where each tensor's bytes lie (``tensor=True``,
with an itemsize) and, optionally, opaque parts it knows about. :func:`layout`
turns them into :class:`~amber.formats.Region` s that

1. cover ``[0, size)`` contiguously, with no empty region (an empty file has none);
2. never put two tensors of different itemsize into one region;
3. fold runs of small neighbours (each under ``SMALL`` bytes) into one region, so
   a model of many biases and norms does not become thousands of tiny chunks.
   Opaque bytes in such a run (pickle opcodes, zip headers, padding) join it;
4. cut a large tensor in fixed pieces (``cdc=False``), and large opaque bytes
   (a pickle's loss history, a long header) by content (``cdc=True``), so an
   insertion there shifts no later chunk.

Spans that overlap or leave the file are a parse error: :class:`Malformed`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from amber.formats import PIECE, Region

SMALL = 64 << 10  # regions under this size fold into their small neighbours


class Malformed(Exception):
    """Internal: the file is not what its first bytes claimed; plan it as opaque."""


@dataclass(frozen=True)
class Span:
    """Bytes ``[offset, offset + length)`` of one tensor, or of opaque data."""

    offset: int
    length: int
    itemsize: int = 0
    tensor: bool = True

    @property
    def end(self) -> int:
        return self.offset + self.length


FLOAT_ITEMSIZES = (2, 4, 8)


def float_itemsize(itemsize: int) -> int:
    """``itemsize`` if byte grouping helps elements of that size, else 0."""
    return itemsize if itemsize in FLOAT_ITEMSIZES else 0


def opaque(size: int) -> list[Region]:
    """The plan for bytes we do not understand: one content-defined region."""
    return [Region(0, size, 0, cdc=True)] if size > 0 else []


def layout(spans: Iterable[Span], size: int, *, tail_cdc: bool = False) -> list[Region]:
    """Regions for a file of ``size`` bytes holding ``spans`` (see module doc).

    ``tail_cdc`` makes the bytes after the last span one content-defined region
    (data the parser did not reach, such as what follows a pickle's STOP).
    """
    ordered = _checked(spans, size)
    filled = _fill_gaps(ordered, size, tail_cdc)
    return _fold_small(filled)


def covers(regions: Sequence[Region], size: int) -> bool:
    """True if ``regions`` cover ``[0, size)`` contiguously with no empty region."""
    position = 0
    for region in regions:
        if region.offset != position or region.length <= 0 or region.itemsize < 0:
            return False
        position += region.length
    return position == size


def _checked(spans: Iterable[Span], size: int) -> list[Span]:
    ordered = sorted((s for s in spans if s.length > 0), key=lambda s: s.offset)
    position = 0
    for span in ordered:
        if span.offset < position or span.end > size or span.length < 0:
            raise Malformed(f"span {span.offset}+{span.length} overlaps or leaves a {size}-byte file")
        position = span.end
    return ordered


def _fill_gaps(spans: list[Span], size: int, tail_cdc: bool) -> list[Region | Span]:
    out: list[Region | Span] = []
    position = 0
    for span in spans:
        if span.offset > position:
            out.append(Span(position, span.offset - position, 0, tensor=False))
        out.append(span)
        position = span.end
    if position < size:
        rest = size - position
        out.append(Region(position, rest, 0, cdc=True) if tail_cdc else Span(position, rest, 0, tensor=False))
    return out


def _fold_small(parts: list[Region | Span]) -> list[Region]:
    """Fold runs of small spans; a run holds tensors of one itemsize at most."""
    out: list[Region] = []
    run: list[Span] = []
    run_itemsize: int | None = None  # itemsize of the run's tensors, None while it has none

    def flush() -> None:
        nonlocal run, run_itemsize
        if run:
            itemsize = float_itemsize(run_itemsize or 0)
            out.append(Region(run[0].offset, run[-1].end - run[0].offset, itemsize))
        run, run_itemsize = [], None

    for part in parts:
        if isinstance(part, Region):  # content-defined: never folded
            flush()
            out.append(part)
            continue
        if part.length >= SMALL:  # large: a tensor is cut in fixed pieces, opaque bytes by content
            flush()
            if part.tensor:
                out.append(Region(part.offset, part.length, float_itemsize(part.itemsize)))
            else:
                out.append(Region(part.offset, part.length, 0, cdc=True))
            continue
        clashes = part.tensor and run_itemsize is not None and run_itemsize != part.itemsize
        if clashes or (run and part.end - run[0].offset > PIECE):
            flush()
        run.append(part)
        if part.tensor:
            run_itemsize = part.itemsize
    flush()
    return out

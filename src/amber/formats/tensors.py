"""What a weight file's header says about the tensors it holds."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from amber.formats import dtypes
from amber.formats.regions import Span


@dataclass(frozen=True)
class Tensor:
    """One tensor's bytes: ``[offset, offset + length)`` of the file."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    offset: int
    length: int
    packed: bool = False  # the bytes are compressed (a deflated .npz member)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Weights:
    """A weight file as its header describes it; ``info`` holds format extras."""

    format: str
    tensors: tuple[Tensor, ...]
    info: dict[str, Any] = field(default_factory=dict)

    def spans(self) -> list[Span]:
        return [Span(t.offset, t.length, 0 if t.packed else dtypes.itemsize_hint(t.dtype)) for t in self.tensors]


def main_dtype(counts: Iterable[tuple[str, int]]) -> str | None:
    """The dtype holding the most elements (ties: the first seen)."""
    total: Counter[str] = Counter()
    for dtype, numel in counts:
        total[dtype] += numel
    return total.most_common(1)[0][0] if total else None

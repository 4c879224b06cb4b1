"""Model formats: where chunk boundaries go, and what a folder says about itself.

Two questions, one small interface:

* :func:`plan_regions` — how to cut one file. Returns regions covering the file
  from offset 0 to its size, contiguously. A region with ``cdc=True`` is cut by
  content-defined chunking as it streams; any other region is cut into fixed
  pieces of at most ``PIECE`` bytes. ``itemsize`` 2/4/8 marks float tensor bytes
  (worth byte grouping); 0 means opaque bytes.
* :func:`detect` — what the folder holds: model type, iteration, metrics and
  metadata found in the model's own files.

Both only read headers and small metadata files; neither loads a model, and
neither ever executes a pickle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PIECE = 4 << 20  # the largest fixed piece; CDC chunks stay at or below this too


@dataclass(frozen=True)
class Region:
    offset: int
    length: int
    itemsize: int = 0
    cdc: bool = False


@dataclass
class Detected:
    model_type: str | None = None
    iteration: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


def plan_regions(path: str, size: int) -> list[Region]:
    """Regions for the file at ``path`` (``size`` bytes as stat saw it)."""
    from amber.formats import registry

    return registry.plan_regions(path, size)


def detect(folder: str) -> Detected:
    from amber.formats import registry

    return registry.detect(folder)

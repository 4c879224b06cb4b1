"""Model formats: where chunk boundaries go, and what a folder says about itself.

Two questions, one small interface:

* :func:`plan_regions` — how to cut one file. Returns regions covering the file
  from offset 0 to its size, contiguously. A region with ``cdc=True`` is cut by
  content-defined chunking as it streams; any other region is cut into fixed
  pieces of at most ``PIECE`` bytes. ``itemsize`` 2/4/8 marks float tensor bytes
  (worth byte grouping); 0 means opaque bytes.
* :func:`detect` — what the folder holds: model type, iteration, metrics and
  metadata found in the model's own files.

DeepFaceLab folders can hold several models: :func:`dfl_models` names them and
:func:`dfl_files` lists one model's files (for ``snapshot --select``).

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


def detect(folder: str, *, select: str | None = None) -> Detected:
    """What the model folder (or single model file) at ``folder`` holds.

    ``select`` picks one DeepFaceLab model when the folder holds several (see
    :func:`dfl_models`); without it such a folder reports ``model_type=None``
    and the models present in ``metadata['dfl_models']``.
    Raises UnsafePickle if a DeepFaceLab ``_data.dat`` asks for code, and
    InvalidInput if a metadata file it must read is damaged. PyTorch
    checkpoints that pickle globals outside the safe table are not refused but
    reported in ``metadata['unsafe_pickles']`` (file name → globals).
    """
    from amber.formats import registry

    return registry.detect(folder, select=select)


def dfl_models(folder: str) -> list[str]:
    """Prefixes of the DeepFaceLab models in ``folder``, sorted (``['XSeg', 'new_SAEHD']``)."""
    from amber.formats.metadata import dfl

    return dfl.dfl_models(folder)


def dfl_files(folder: str, select: str) -> list[str]:
    """Names of the files directly in ``folder`` that ``select`` picks, sorted.

    ``select`` is a glob over file names, a model prefix from :func:`dfl_models`,
    a model's bare name or TYPE when only one model has it, or a name prefix.
    """
    from amber.formats.metadata import dfl

    return dfl.dfl_files(folder, select)

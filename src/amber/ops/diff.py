"""Diff: what changed between two versions, down to each tensor.

Metadata fields, files added/removed/changed, and for weight files the tensors
added/removed, shape and dtype changes and how far each changed tensor moved
(max absolute and relative L2 difference). Files are compared by chunk list
first; only files whose chunks differ are materialised (to a temp folder inside
the repository) and read tensor by tensor in bounded blocks, so memory stays
flat. Pickled weights go through the formats layer's restricted unpickler and
are never executed.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from amber.errors import AmberError
from amber.formats import registry
from amber.formats.tensors import Tensor
from amber.ops.context import Context
from amber.ops.materialize import materialize
from amber.ops.restore import load_manifest
from amber.types import FileEntry, Version

_BLOCK = 1 << 20  # elements per block when comparing tensors
_NUMPY = {"float16": np.float16, "float32": np.float32, "float64": np.float64}


@dataclass(frozen=True)
class TensorChange:
    name: str
    status: str  # added, removed, changed, reshaped, retyped
    shape: list[list[int] | None]
    dtype: list[str | None]
    max_abs: float | None = None
    rel_l2: float | None = None


@dataclass(frozen=True)
class FileChange:
    path: str
    status: str  # added, removed, changed, mode
    size: list[int | None]
    tensors: list[TensorChange] = field(default_factory=list)
    note: str | None = None


@dataclass(frozen=True)
class Diff:
    a: str
    b: str
    fields: dict[str, list[Any]]
    files: list[FileChange]


_FIELDS = ("label", "kind", "iteration", "notes", "model_type", "tags")


def diff(ctx: Context, a: Version, b: Version) -> Diff:
    fields = {f: [getattr(a, f), getattr(b, f)] for f in _FIELDS if getattr(a, f) != getattr(b, f)}
    for group in ("metrics", "metadata"):
        da, db = getattr(a, group), getattr(b, group)
        for key in sorted(set(da) | set(db)):
            if da.get(key) != db.get(key):
                fields[f"{group}.{key}"] = [da.get(key), db.get(key)]
    _, ea = load_manifest(ctx, a)
    _, eb = load_manifest(ctx, b)
    return Diff(a.ref, b.ref, fields, _files(ctx, {e.path: e for e in ea}, {e.path: e for e in eb}))


def _files(ctx: Context, ea: dict[str, FileEntry], eb: dict[str, FileEntry]) -> list[FileChange]:
    out = []
    for path in sorted(set(ea) | set(eb)):
        x, y = ea.get(path), eb.get(path)
        if x is None or y is None:
            out.append(FileChange(path, "removed" if y is None else "added", [_size(x), _size(y)]))
            continue
        if (x.type, x.chunks, x.target) != (y.type, y.chunks, y.target):
            change = FileChange(path, "changed", [x.size, y.size])
            if x.type == y.type == "file":
                change = _compare_weights(ctx, x, y, change)
            out.append(change)
        elif x.mode != y.mode:
            out.append(FileChange(path, "mode", [x.size, y.size], note=f"{x.mode:04o} -> {y.mode:04o}"))
    return out


def _size(e: FileEntry | None) -> int | None:
    return e.size if e is not None and e.type == "file" else None


def _compare_weights(ctx: Context, x: FileEntry, y: FileEntry, change: FileChange) -> FileChange:
    with tempfile.TemporaryDirectory(dir=ctx.amber, prefix="diff-") as tmp:
        pa, pb = os.path.join(tmp, "a"), os.path.join(tmp, "b")
        materialize(ctx, "file", [x], pa)
        materialize(ctx, "file", [y], pb)
        try:
            wa, wb = _weights(pa, x.path), _weights(pb, y.path)
        except AmberError as exc:
            return FileChange(change.path, "changed", change.size, note=f"tensors not compared: {exc.message}")
        if wa is None or wb is None:
            return change
        ta, tb = {t.name: t for t in wa}, {t.name: t for t in wb}
        tensors = [_tensor(pa, pb, ta.get(n), tb.get(n)) for n in sorted(set(ta) | set(tb))]
        return FileChange(change.path, "changed", change.size, [t for t in tensors if t is not None])


def _weights(path: str, shown: str) -> tuple[Tensor, ...] | None:
    with open(path, "rb") as fh:
        weights = registry.read_weights(fh, os.fstat(fh.fileno()).st_size, shown)
    return None if weights is None else weights.tensors


def _tensor(pa: str, pb: str, x: Tensor | None, y: Tensor | None) -> TensorChange | None:
    shape = [list(x.shape) if x else None, list(y.shape) if y else None]
    dtype = [x.dtype if x else None, y.dtype if y else None]
    if x is None or y is None:
        return TensorChange((x or y).name, "removed" if y is None else "added", shape, dtype)  # type: ignore[union-attr]
    if x.dtype != y.dtype:
        return TensorChange(x.name, "retyped", shape, dtype)
    if x.shape != y.shape:
        return TensorChange(x.name, "reshaped", shape, dtype)
    if x.packed or y.packed or x.length != y.length:
        return None
    if _same_bytes(pa, pb, x, y):
        return None
    max_abs, rel = _distance(pa, pb, x, y)
    return TensorChange(x.name, "changed", shape, dtype, max_abs, rel)


def _same_bytes(pa: str, pb: str, x: Tensor, y: Tensor) -> bool:
    with open(pa, "rb") as fa, open(pb, "rb") as fb:
        fa.seek(x.offset)
        fb.seek(y.offset)
        left = x.length
        while left:
            n = min(left, 8 << 20)
            if fa.read(n) != fb.read(n):
                return False
            left -= n
    return True


def _as_float(raw: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "bfloat16":
        return (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    if dtype in _NUMPY:
        return raw.view(_NUMPY[dtype]).astype(np.float64)
    return raw.astype(np.float64)


def _distance(pa: str, pb: str, x: Tensor, y: Tensor) -> tuple[float | None, float | None]:
    """(max |b - a|, ||b - a|| / ||a||) over the tensor, read in blocks."""
    kind = "uint16" if x.dtype == "bfloat16" else x.dtype
    try:
        np_dtype = np.dtype(kind)
    except TypeError:
        return None, None  # a quantised or exotic type: bytes differ, no numeric distance
    a = np.memmap(pa, dtype=np_dtype, mode="r", offset=x.offset, shape=(x.numel,))
    b = np.memmap(pb, dtype=np_dtype, mode="r", offset=y.offset, shape=(y.numel,))
    max_abs, diff_sq, base_sq = 0.0, 0.0, 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        for start in range(0, x.numel, _BLOCK):
            fa = _as_float(np.asarray(a[start : start + _BLOCK]), x.dtype)
            fb = _as_float(np.asarray(b[start : start + _BLOCK]), x.dtype)
            d = fb - fa
            max_abs = max(max_abs, float(np.nanmax(np.abs(d))) if d.size else 0.0)
            diff_sq += float(np.nansum(d * d))
            base_sq += float(np.nansum(fa * fa))
    del a, b
    rel = math.sqrt(diff_sq) / math.sqrt(base_sq) if base_sq > 0 else None
    return max_abs, rel

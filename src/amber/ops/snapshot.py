"""Snapshot: capture a folder into the store, then record it in one transaction.

Invariants:

1. Every object a version names is durable (file fsynced, folder fsynced)
   before the version's row is committed. A crash before the commit leaves only
   orphan objects, which nothing names and gc removes.
2. A file whose size, mtime_ns, ctime_ns and inode match the stat cache, and
   that was not modified within ``RACY_NS`` of when it was last read, is reused
   without being read (git's "racily clean" rule).
3. Version numbers come from ``models.next_number`` inside the transaction, so
   they are never reused, even after a delete.
"""

from __future__ import annotations

import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import blake3

from amber import clock, faults, formats
from amber.catalog import queries
from amber.errors import InvalidInput
from amber.ops import manifest
from amber.ops.chunking import BasePicker, ChunkWriter
from amber.ops.context import Context
from amber.ops.scan import Found, walk
from amber.store.objects import Stored
from amber.types import KINDS, FileEntry

RACY_NS = 100_000_000  # Linux stamps mtime at tick granularity (<= 10 ms); see docs/decisions


@dataclass
class VersionInfo:
    label: str = ""
    kind: str = "manual"
    iteration: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    notes: str = ""
    model_type: str | None = None
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        if self.kind not in KINDS:
            raise InvalidInput(f"kind must be one of {', '.join(KINDS)}, not '{self.kind}'")
        if self.iteration is not None and (isinstance(self.iteration, bool) or not isinstance(self.iteration, int)):
            raise InvalidInput(f"iteration must be a whole number, not {self.iteration!r}")
        for name, value in self.metrics.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise InvalidInput(f"metric '{name}' must be a finite number, not {value!r}")
        if any(not isinstance(t, str) or not t.strip() for t in self.tags):
            raise InvalidInput("tags must be non-empty strings")
        try:
            json.dumps(self.metadata, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"metadata must be plain JSON values: {exc}") from None


@dataclass
class Captured:
    root: str  # "dir" or "file"
    entries: list[FileEntry]
    manifest_id: str
    manifest_bytes: bytes
    new: dict[str, Stored]
    stat_rows: list[tuple[Any, ...]]
    size: int


def selected(folder: str, select: str | None) -> set[str] | None:
    """The top-level names ``select`` picks in a DeepFaceLab folder (None: everything)."""
    return set(formats.dfl_files(folder, select)) if select else None


def capture(ctx: Context, source: str, model_id: int | None, select: str | None = None) -> Captured:
    """Store every chunk of ``source`` (absolute path) and its manifest.

    With ``select``, only the files of that DeepFaceLab model are taken.
    """
    cache = queries.stat_cache(ctx.catalog, model_id) if model_id is not None else {}
    if os.path.isdir(source):
        root, found = "dir", walk(source)
        only = selected(source, select)
        if only is not None:
            found = [f for f in found if f.path in only]
    else:
        st = os.stat(source, follow_symlinks=False)
        root, found = "file", [Found(os.path.basename(source), "file", st.st_mode & 0o7777, st)]
    todo = [f for f in found if f.type == "file" and not _unchanged(cache.get(f.path), f.st)]
    ctx.progress.start("snapshot", sum(f.st.st_size for f in todo))
    bases = BasePicker(*queries.delta_bases(ctx.catalog))
    writer = ChunkWriter(ctx.store, queries.known_chunks(ctx.catalog), _pool(ctx), ctx.workers, ctx.progress, bases)
    entries: list[FileEntry] = []
    stat_rows: list[tuple[Any, ...]] = []
    try:
        for f in found:
            entry, row = _entry(ctx, writer, source, root, f, cache)
            entries.append(entry)
            if row is not None:
                stat_rows.append(row)
    finally:
        writer.pool.shutdown(wait=True)
        ctx.progress.finish()
    data = manifest.encode(root, entries)
    mid = blake3.blake3(data).hexdigest()
    if mid not in writer.known:
        writer.new[mid] = ctx.store.put(data, oid=mid)
    ctx.store.sync()
    faults.crash_point("snapshot.objects_written")
    size = sum(e.size for e in entries)
    return Captured(root, entries, mid, data, writer.new, stat_rows, size)


def _pool(ctx: Context) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=ctx.workers, thread_name_prefix="amber-chunk")


def _unchanged(row: Any, st: os.stat_result) -> bool:
    """The file's stat equals the cached one, and it was not modified as it was read."""
    if row is None:
        return False
    same = (row["size"], row["mtime_ns"], row["ctime_ns"], row["ino"]) == (
        st.st_size,
        st.st_mtime_ns,
        st.st_ctime_ns,
        st.st_ino,
    )
    return same and st.st_mtime_ns < row["read_ns"] - RACY_NS


def _cached(row: Any, st: os.stat_result) -> FileEntry | None:
    if not _unchanged(row, st):
        return None
    doc = json.loads(row["entry"])
    return FileEntry(doc["path"], "file", st.st_mode & 0o7777, doc["size"], tuple((c, s) for c, s in doc["chunks"]))


def _entry(
    ctx: Context, writer: ChunkWriter, source: str, root: str, f: Found, cache: dict[str, Any]
) -> tuple[FileEntry, tuple[Any, ...] | None]:
    if f.type == "dir":
        return FileEntry(f.path, "dir", f.mode), None
    if f.type == "symlink":
        return FileEntry(f.path, "symlink", f.mode, target=f.target), None
    prev = cache.get(f.path)
    entry = _cached(prev, f.st)
    if entry is not None:
        return entry, _cache_row(entry, f.st, cache[f.path]["read_ns"])
    read_ns = clock.now_ns()
    previous = tuple((c, n) for c, n in json.loads(prev["entry"])["chunks"]) if prev is not None else ()
    st, chunks = writer.read_file(source if root == "file" else os.path.join(source, f.path), previous)
    entry = FileEntry(f.path, "file", st.st_mode & 0o7777, st.st_size, chunks)
    return entry, _cache_row(entry, st, read_ns)


def _cache_row(entry: FileEntry, st: os.stat_result, read_ns: int) -> tuple[Any, ...]:
    """The stat-cache row saying: a file with this stat held these chunks."""
    doc = {"path": entry.path, "size": entry.size, "chunks": [list(c) for c in entry.chunks]}
    key = queries.path_key(entry.path)
    return (key, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, read_ns, json.dumps(doc))


def stat_rows_for(folder: str, root: str, entries: list[FileEntry], read_ns: int) -> list[tuple[Any, ...]]:
    """Stat-cache rows for files just materialised from ``entries`` (after a restore)."""
    rows = []
    for e in entries:
        if e.type != "file":
            continue
        st = os.stat(folder if root == "file" else os.path.join(folder, e.path), follow_symlinks=False)
        rows.append(_cache_row(e, st, read_ns))
    return rows


def find_equal(ctx: Context, model_id: int, manifest_id: str) -> str | None:
    """The newest version of the model with exactly this content, if any."""
    rows = ctx.catalog.query(
        "SELECT id FROM versions WHERE model_id = ? AND manifest = ? ORDER BY number DESC LIMIT 1",
        (model_id, manifest_id),
    )
    return rows[0]["id"] if rows else None

"""Recording a captured folder as a version: one catalog transaction."""

from __future__ import annotations

import json
import os
import sqlite3

import blake3

from amber import clock, faults
from amber.catalog import queries
from amber.ops.context import Context
from amber.ops.snapshot import Captured, VersionInfo


class StaleCache(Exception):
    """Internal: the stat cache named chunks that a delete has since removed."""

    def __init__(self, model_id: int) -> None:
        super().__init__(model_id)
        self.model_id = model_id


def drop_stat_cache(ctx: Context, model_id: int) -> None:
    with ctx.catalog.transaction() as db:
        db.execute("DELETE FROM stat_cache WHERE model_id = ?", (model_id,))


def folder_setting(ctx: Context, folder: str) -> str:
    """How a model's folder is stored: relative to the repository when inside it."""
    rel = os.path.relpath(folder, ctx.root)
    return folder if rel == ".." or rel.startswith(".." + os.sep) else rel


def model_id(db: sqlite3.Connection, name: str, folder: str | None, model_type: str | None) -> int:
    row = db.execute("SELECT id FROM models WHERE name = ?", (name,)).fetchone()
    if row is not None:
        if folder is not None:
            db.execute("UPDATE models SET path = ? WHERE id = ?", (folder, row["id"]))
        if model_type:
            db.execute("UPDATE models SET model_type = coalesce(model_type, ?) WHERE id = ?", (model_type, row["id"]))
        return int(row["id"])
    cur = db.execute(
        "INSERT INTO models (name, path, model_type, created_at) VALUES (?, ?, ?, ?)",
        (name, folder, model_type, clock.iso(clock.now())),
    )
    return int(cur.lastrowid or 0)


def _bases(db: sqlite3.Connection, ids: set[str], cap: Captured) -> set[str]:
    """The delta bases the chunks ``ids`` are coded against (a version needs them too)."""
    out = {s.base for s in cap.new.values() if s.base}
    old = [i for i in ids if i not in cap.new]
    for start in range(0, len(old), 500):
        part = old[start : start + 500]
        rows = db.execute(
            f"SELECT base FROM chunks WHERE base IS NOT NULL AND id IN ({','.join('?' * len(part))})", part
        )
        out.update(r[0] for r in rows)
    return out


def commit(
    ctx: Context, cap: Captured, *, model: str, folder: str | None, info: VersionInfo, move_head: bool = True
) -> str:
    """Insert the version and everything it needs; return its id."""
    faults.crash_point("snapshot.before_commit")
    created = clock.iso(clock.now())
    with ctx.catalog.transaction() as db:
        mid = model_id(db, model, folder_setting(ctx, folder) if folder else None, info.model_type)
        number, head = db.execute("SELECT next_number, head FROM models WHERE id = ?", (mid,)).fetchone()
        vid = blake3.blake3(f"{model}\0{number}\0{cap.manifest_id}\0{created}\0".encode() + os.urandom(16)).hexdigest()
        db.executemany(
            "INSERT OR IGNORE INTO chunks (id, raw_size, stored_size, codec, base, losses) VALUES (?, ?, ?, ?, ?, ?)",
            [(s.id, s.raw_size, s.stored_size, s.codec, s.base, s.losses) for s in cap.new.values()],
        )
        db.execute(
            "INSERT INTO versions (id, model_id, number, label, kind, created_at, iteration, metrics, notes,"
            " model_type, tags, metadata, parent, manifest, size_bytes, file_count)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                vid, mid, number, info.label or f"v{number}", info.kind, created, info.iteration,
                json.dumps(info.metrics), info.notes, info.model_type, json.dumps(info.tags),
                json.dumps(info.metadata), head, cap.manifest_id, cap.size,
                sum(1 for e in cap.entries if e.type == "file"),
            ),
        )  # fmt: skip
        needed = {cap.manifest_id} | {oid for e in cap.entries for oid, _ in e.chunks}
        needed |= _bases(db, needed, cap)
        db.executemany("INSERT INTO version_chunks (version_id, chunk_id) VALUES (?, ?)", [(vid, c) for c in needed])
        present = db.execute(
            "SELECT count(*) FROM version_chunks vc JOIN chunks c ON c.id = vc.chunk_id WHERE vc.version_id = ?",
            (vid,),
        ).fetchone()[0]
        if present != len(needed):
            raise StaleCache(mid)
        db.execute("UPDATE models SET next_number = ? WHERE id = ?", (number + 1, mid))
        if move_head:
            db.execute("UPDATE models SET head = ? WHERE id = ?", (vid, mid))
            queries.replace_stat_cache(db, mid, cap.stat_rows)
    faults.crash_point("snapshot.after_commit")
    return vid

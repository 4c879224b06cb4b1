"""Delete versions and the chunks nothing else needs; sweep orphans.

Invariants:

1. Runs under the exclusive store lock, so no snapshot is between deciding to
   reuse a chunk and naming it in a commit.
2. Rows go first (one transaction), files after: a crash in between leaves
   orphan files, never a version naming a missing chunk.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence

from amber import faults
from amber.catalog import queries
from amber.errors import Conflict
from amber.ops import locks
from amber.ops.context import Context
from amber.ops.swap import remove_tree


def delete_versions(ctx: Context, version_ids: Sequence[str]) -> tuple[int, int]:
    """Remove the versions; return (bytes freed, chunks removed)."""
    with locks.store(ctx.amber, exclusive=True):
        return delete_locked(ctx, version_ids)


def delete_locked(ctx: Context, version_ids: Sequence[str]) -> tuple[int, int]:
    """:func:`delete_versions` for a caller already holding the exclusive store lock."""
    if not version_ids:
        return 0, 0
    with ctx.catalog.transaction() as db:
        gone = queries.chunks_only_in(ctx.catalog, version_ids)
        gone_ids = {r["id"] for r in gone}
        for vid in version_ids:  # children now descend from the deleted version's parent
            parent = db.execute("SELECT parent FROM versions WHERE id = ?", (vid,)).fetchone()[0]
            db.execute("UPDATE versions SET parent = ? WHERE parent = ?", (parent, vid))
            db.execute("UPDATE models SET head = ? WHERE head = ?", (parent, vid))
            db.execute("DELETE FROM versions WHERE id = ?", (vid,))
        db.executemany("DELETE FROM chunks WHERE id = ?", [(c,) for c in gone_ids])
        _drop_stale_cache(db, gone_ids)
    faults.crash_point("delete.committed")
    for n, oid in enumerate(sorted(gone_ids)):
        if n == 1:
            faults.crash_point("delete.unlinking")
        ctx.store.delete(oid)
    ctx.store.sync_removed(gone_ids)
    for vid in version_ids:  # copies amber.path materialised for these versions
        remove_tree(os.path.join(ctx.amber, "cache", vid))
    return sum(r["stored_size"] for r in gone), len(gone_ids)


def sweep_orphans(ctx: Context) -> int:
    """Remove object files no catalog row names, and leftover temp files (exclusive lock held)."""
    known = {r[0] for r in ctx.catalog.query("SELECT id FROM chunks")}
    orphans = {oid for oid in ctx.store.ids() if oid not in known}
    for oid in orphans:
        ctx.store.delete(oid)
    for tmp in list(ctx.store.temp_files()):
        os.unlink(tmp)
    ctx.store.sync_removed(orphans)
    return len(orphans)


def sweep_if_idle(ctx: Context) -> int:
    """After a failed snapshot: give its objects' space back, if no other process is busy."""
    try:
        with locks.hold(os.path.join(ctx.amber, "locks", "store.lock"), exclusive=True, what="", wait=False):
            return sweep_orphans(ctx)
    except (Conflict, OSError):
        return 0  # another process is working (or the disk is still full): gc will do it


def _drop_stale_cache(db: sqlite3.Connection, gone: set[str]) -> None:
    if not gone:
        return
    rows = db.execute("SELECT model_id, path, entry FROM stat_cache").fetchall()
    stale = [(r[0], r[1]) for r in rows if any(c in gone for c, _ in json.loads(r[2])["chunks"])]
    db.executemany("DELETE FROM stat_cache WHERE model_id = ? AND path = ?", stale)

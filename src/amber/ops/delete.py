"""Delete versions and the chunks nothing else needs.

Invariants:

1. Runs under the exclusive store lock, so no snapshot is between deciding to
   reuse a chunk and naming it in a commit.
2. Rows go first (one transaction), files after: a crash in between leaves
   orphan files, never a version naming a missing chunk.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from amber import faults
from amber.catalog import queries
from amber.ops import locks
from amber.ops.context import Context


def delete_versions(ctx: Context, version_ids: Sequence[str]) -> tuple[int, int]:
    """Remove the versions; return (bytes freed, chunks removed)."""
    with locks.store(ctx.amber, exclusive=True):
        with ctx.catalog.transaction() as db:
            gone = queries.chunks_only_in(ctx.catalog, version_ids)
            gone_ids = {r["id"] for r in gone}
            marks = ",".join("?" * len(version_ids))
            for vid in version_ids:  # children now descend from the deleted version's parent
                db.execute(
                    "UPDATE versions SET parent = (SELECT parent FROM versions WHERE id = ?) WHERE parent = ?",
                    (vid, vid),
                )
                db.execute(
                    "UPDATE models SET head = (SELECT parent FROM versions WHERE id = ?) WHERE head = ?", (vid, vid)
                )
            db.execute(f"DELETE FROM versions WHERE id IN ({marks})", list(version_ids))
            db.executemany("DELETE FROM chunks WHERE id = ?", [(c,) for c in gone_ids])
            _drop_stale_cache(db, gone_ids)
        faults.crash_point("delete.committed")
        for n, oid in enumerate(sorted(gone_ids)):
            if n == 1:
                faults.crash_point("delete.unlinking")
            ctx.store.delete(oid)
    return sum(r["stored_size"] for r in gone), len(gone_ids)


def _drop_stale_cache(db: object, gone: set[str]) -> None:
    if not gone:
        return
    rows = db.execute("SELECT model_id, path, entry FROM stat_cache").fetchall()  # type: ignore[attr-defined]
    stale = [(r["model_id"], r["path"]) for r in rows if any(c in gone for c, _ in json.loads(r["entry"])["chunks"])]
    db.executemany("DELETE FROM stat_cache WHERE model_id = ? AND path = ?", stale)  # type: ignore[attr-defined]

"""Reads and writes of catalog rows, turned into the API's dataclasses."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from amber.catalog import aliases as alias_rules
from amber.catalog.db import Catalog
from amber.types import Model, Version

_VERSION_SELECT = """
    SELECT v.*, m.name AS model_name,
           p.number AS parent_number, pm.name AS parent_model
    FROM versions v
    JOIN models m ON m.id = v.model_id
    LEFT JOIN versions p ON p.id = v.parent
    LEFT JOIN models pm ON pm.id = p.model_id
"""


def model_row(cat: Catalog, name: str) -> sqlite3.Row | None:
    rows = cat.query("SELECT * FROM models WHERE name = ?", (name,))
    return rows[0] if rows else None


def model_names(cat: Catalog) -> list[str]:
    return [r[0] for r in cat.query("SELECT name FROM models ORDER BY name")]


def models(cat: Catalog) -> list[Model]:
    rows = cat.query(
        "SELECT m.*, (SELECT count(*) FROM versions v WHERE v.model_id = m.id) AS n FROM models m ORDER BY name"
    )
    return [Model(r["name"], r["path"], r["model_type"], r["head"], r["n"]) for r in rows]


def _stored_by_version(cat: Catalog, ids: Sequence[str]) -> dict[str, int]:
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = cat.query(
        f"""SELECT vc.version_id, coalesce(sum(c.stored_size), 0) AS s FROM version_chunks vc
            JOIN chunks c ON c.id = vc.chunk_id WHERE vc.version_id IN ({marks}) GROUP BY vc.version_id""",
        list(ids),
    )
    return {r["version_id"]: r["s"] for r in rows}


def _unique_by_version(cat: Catalog, ids: Sequence[str]) -> dict[str, int]:
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = cat.query(
        f"""SELECT vc.version_id, sum(c.stored_size) AS s FROM version_chunks vc
            JOIN chunks c ON c.id = vc.chunk_id
            WHERE vc.version_id IN ({marks}) AND NOT EXISTS (
              SELECT 1 FROM version_chunks o WHERE o.chunk_id = vc.chunk_id AND o.version_id != vc.version_id)
            GROUP BY vc.version_id""",
        list(ids),
    )
    return {r["version_id"]: r["s"] for r in rows}


def usage(cat: Catalog, model: str | None) -> tuple[int, int, int]:
    """(versions, logical bytes, stored bytes of the distinct chunks they need)."""
    where, params = ("WHERE m.name = ?", [model]) if model else ("", [])
    n, logical = cat.query(
        f"SELECT count(*), coalesce(sum(v.size_bytes), 0) FROM versions v JOIN models m ON m.id = v.model_id {where}",
        params,
    )[0]
    stored = cat.query(
        f"""SELECT coalesce(sum(c.stored_size), 0) FROM chunks c WHERE c.id IN (
              SELECT vc.chunk_id FROM version_chunks vc JOIN versions v ON v.id = vc.version_id
              JOIN models m ON m.id = v.model_id {where})""",
        params,
    )[0][0]
    return n, logical, stored


def to_versions(cat: Catalog, rows: Sequence[sqlite3.Row]) -> list[Version]:
    ids = [r["id"] for r in rows]
    aliases = alias_rules.by_version(cat)
    stored: dict[str, int] = {}
    unique: dict[str, int] = {}
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        stored.update(_stored_by_version(cat, part))
        unique.update(_unique_by_version(cat, part))
    out = []
    for r in rows:
        parent = f"{r['parent_model']}:v{r['parent_number']}" if r["parent_number"] is not None else None
        out.append(
            Version(
                id=r["id"],
                model=r["model_name"],
                number=r["number"],
                label=r["label"],
                kind=r["kind"],
                created_at=r["created_at"],
                iteration=r["iteration"],
                metrics=json.loads(r["metrics"]),
                notes=r["notes"],
                model_type=r["model_type"],
                tags=json.loads(r["tags"]),
                metadata=json.loads(r["metadata"]),
                parent=parent,
                aliases=aliases.get(r["id"], []),
                size_bytes=r["size_bytes"],
                stored_bytes=stored.get(r["id"], 0),
                unique_bytes=unique.get(r["id"], 0),
                manifest=r["manifest"],
                file_count=r["file_count"],
            )
        )
    return out


def versions(cat: Catalog, model: str | None = None) -> list[Version]:
    """Newest first."""
    if model is None:
        rows = cat.query(_VERSION_SELECT + " ORDER BY v.created_at DESC, v.number DESC")
    else:
        rows = cat.query(_VERSION_SELECT + " WHERE m.name = ? ORDER BY v.number DESC", (model,))
    return to_versions(cat, rows)


def version_rows(cat: Catalog, where: str, params: Sequence[object]) -> list[Version]:
    return to_versions(cat, cat.query(_VERSION_SELECT + " WHERE " + where, list(params)))


def known_chunks(cat: Catalog) -> set[str]:
    return {r[0] for r in cat.query("SELECT id FROM chunks")}


def delta_bases(cat: Catalog) -> tuple[dict[str, str], dict[str, int], dict[str, int]]:
    """(delta chunk id -> base id, base id -> number of deltas using it,
    whole chunk id -> versions in a row its piece's delta lost)."""
    bases = {r[0]: r[1] for r in cat.query("SELECT id, base FROM chunks WHERE base IS NOT NULL")}
    uses: dict[str, int] = {}
    for base in bases.values():
        uses[base] = uses.get(base, 0) + 1
    losses = {r[0]: r[1] for r in cat.query("SELECT id, losses FROM chunks WHERE losses > 0")}
    return bases, uses, losses


def chunks_only_in(cat: Catalog, version_ids: Sequence[str]) -> list[sqlite3.Row]:
    """Chunks that no version outside ``version_ids`` needs (what deleting them frees).

    A version needs its chunks and the delta bases they are coded against
    (both are rows of version_chunks), so a base stays while any delta does.
    """
    marks = ",".join("?" * len(version_ids))
    return cat.query(
        f"""SELECT c.id, c.stored_size FROM chunks c
            WHERE c.id IN (SELECT chunk_id FROM version_chunks WHERE version_id IN ({marks}))
              AND NOT EXISTS (SELECT 1 FROM version_chunks o
                              WHERE o.chunk_id = c.id AND o.version_id NOT IN ({marks}))""",
        [*version_ids, *version_ids],
    )


def path_key(path: str) -> str:
    """A file path as the catalog stores it: JSON-escaped ASCII, so names that are
    not UTF-8 (which Python carries as lone surrogates) fit in SQLite text."""
    return json.dumps(path)


def stat_cache(cat: Catalog, model_id: int) -> dict[str, sqlite3.Row]:
    rows = cat.query("SELECT * FROM stat_cache WHERE model_id = ?", (model_id,))
    return {json.loads(r["path"]): r for r in rows}


def replace_stat_cache(db: sqlite3.Connection, model_id: int, rows: Iterable[tuple[Any, ...]]) -> None:
    db.execute("DELETE FROM stat_cache WHERE model_id = ?", (model_id,))
    db.executemany(
        "INSERT INTO stat_cache (model_id, path, size, mtime_ns, ctime_ns, ino, read_ns, entry) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        ((model_id, *r) for r in rows),
    )


def add_event(db: sqlite3.Connection, version_id: str, kind: str, who: str | None, at: str) -> None:
    if who is not None:
        who = who.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    db.execute("INSERT INTO events (version_id, kind, who, at) VALUES (?, ?, ?, ?)", (version_id, kind, who, at))


def events(cat: Catalog, version_id: str) -> list[dict[str, Any]]:
    rows = cat.query("SELECT kind, who, at FROM events WHERE version_id = ? ORDER BY id", (version_id,))
    return [dict(r) for r in rows]

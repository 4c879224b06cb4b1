"""Aliases: stored ones (``production``, a pinned ``best``) and computed ones.

``latest`` is always computed: the newest version of a model that is not a
backup. ``best`` is computed from the model's metric rule (``best_metric``,
``mode``; ties go to the newest) unless a user pinned it, in which case the
stored row wins. Computed aliases are views over the versions table, so they
move in the same transaction as the snapshot or delete that changes them.
"""

from __future__ import annotations

import json
from typing import Any

from amber.catalog.db import Catalog

AUTOMATIC = ("latest", "best")


def settings(cat: Catalog, model_id: int) -> dict[str, Any]:
    rows = cat.query("SELECT settings FROM models WHERE id = ?", (model_id,))
    return json.loads(rows[0][0]) if rows else {}


def latest(cat: Catalog, model_id: int) -> str | None:
    rows = cat.query(
        "SELECT id FROM versions WHERE model_id = ? AND kind != 'backup' ORDER BY number DESC LIMIT 1", (model_id,)
    )
    return rows[0][0] if rows else None


def best_by_metric(cat: Catalog, model_id: int, metric: str, mode: str, limit: int = 1) -> list[str]:
    """The ``limit`` best versions by ``metric`` (ties: newest first)."""
    order = "ASC" if mode == "min" else "DESC"
    path = "$." + json.dumps(metric)
    rows = cat.query(
        f"""SELECT id FROM versions
            WHERE model_id = ? AND kind != 'backup' AND json_type(metrics, ?) IN ('integer', 'real')
            ORDER BY json_extract(metrics, ?) {order}, number DESC LIMIT ?""",
        (model_id, path, path, limit),
    )
    return [r[0] for r in rows]


def stored(cat: Catalog, model_id: int, name: str) -> str | None:
    rows = cat.query("SELECT version_id FROM aliases WHERE model_id = ? AND name = ?", (model_id, name))
    return rows[0][0] if rows else None


def target(cat: Catalog, model_id: int, name: str) -> str | None:
    """The version ``name`` points at for this model, or None."""
    if name == "latest":
        return latest(cat, model_id)
    pinned = stored(cat, model_id, name)
    if pinned is not None or name != "best":
        return pinned
    rule = settings(cat, model_id)
    if not rule.get("best_metric"):
        return None
    found = best_by_metric(cat, model_id, rule["best_metric"], rule.get("mode", "min"))
    return found[0] if found else None


def by_version(cat: Catalog) -> dict[str, list[str]]:
    """Every alias in the repository, keyed by version id."""
    out: dict[str, list[str]] = {}
    for (model_id,) in cat.query("SELECT id FROM models"):
        for name in AUTOMATIC:
            vid = target(cat, model_id, name)
            if vid is not None:
                out.setdefault(vid, []).append(name)
    for r in cat.query("SELECT version_id, name FROM aliases WHERE name NOT IN ('latest', 'best') ORDER BY name"):
        out.setdefault(r[0], []).append(r[1])
    return out

"""Changes that touch no file data: aliases, model settings, labels, usage records."""

from __future__ import annotations

import json
from typing import Any

from amber import clock, faults
from amber.catalog import aliases as alias_rules
from amber.catalog import queries
from amber.errors import InvalidInput, NotFound
from amber.ids import check_name
from amber.ops.context import Context
from amber.types import Version


def set_alias(ctx: Context, version: Version, name: str) -> None:
    check_name(name, "alias name")
    if name == "latest":
        raise InvalidInput("'latest' always names the newest version; it cannot be set by hand")
    if version.kind == "backup" and name == "best":
        raise InvalidInput("a backup cannot be pinned as 'best'")
    with ctx.catalog.transaction() as db:
        model_id = db.execute("SELECT model_id FROM versions WHERE id = ?", (version.id,)).fetchone()[0]
        faults.crash_point("alias.before_commit")
        db.execute(
            "INSERT INTO aliases (model_id, name, version_id, pinned) VALUES (?, ?, ?, 1) "
            "ON CONFLICT (model_id, name) DO UPDATE SET version_id = excluded.version_id",
            (model_id, name, version.id),
        )


def remove_alias(ctx: Context, model_id: int, model: str, name: str) -> None:
    if name == "latest":
        raise InvalidInput("'latest' is automatic and cannot be removed")
    with ctx.catalog.transaction() as db:
        gone = db.execute("DELETE FROM aliases WHERE model_id = ? AND name = ?", (model_id, name)).rowcount
        if not gone and name != "best":
            raise NotFound(f"model '{model}' has no alias '{name}'", hint=f"'amber list --model {model}' shows them")


def update_settings(ctx: Context, model_id: int, changes: dict[str, Any]) -> dict[str, Any]:
    with ctx.catalog.transaction() as db:
        current: dict[str, Any] = json.loads(
            db.execute("SELECT settings FROM models WHERE id = ?", (model_id,)).fetchone()[0]
        )
        for key, value in changes.items():
            if value is None:
                current.pop(key, None)
            else:
                current[key] = value
        db.execute("UPDATE models SET settings = ? WHERE id = ?", (json.dumps(current, sort_keys=True), model_id))
    return current


def protected(ctx: Context, model_id: int) -> list[str]:
    return list(alias_rules.settings(ctx.catalog, model_id).get("protect", []))


def edit(ctx: Context, version: Version, fields: dict[str, Any]) -> None:
    """Change a version's label, notes, tags or metadata; its files never change."""
    with ctx.catalog.transaction() as db:
        for column in ("label", "notes"):
            if fields.get(column) is not None:
                db.execute(f"UPDATE versions SET {column} = ? WHERE id = ?", (fields[column], version.id))
        tags = [t for t in version.tags if t not in fields.get("remove_tags", [])]
        tags += [t for t in fields.get("add_tags", []) if t not in tags]
        metadata = {**version.metadata, **fields.get("metadata", {})}
        for key in fields.get("remove_metadata", []):
            metadata.pop(key, None)
        db.execute(
            "UPDATE versions SET tags = ?, metadata = ? WHERE id = ?",
            (json.dumps(tags), json.dumps(metadata), version.id),
        )


def record_use(ctx: Context, version: Version, kind: str, who: str | None) -> None:
    with ctx.catalog.transaction() as db:
        queries.add_event(db, version.id, kind, who, clock.iso(clock.now()))

"""Restore: back up the current folder, stage the version, verify, swap.

Invariants:

1. The model folder is never written in place: the version is materialised in
   a staging folder beside it (same filesystem), every chunk hash-checked, and
   swapped in whole (see ``amber.ops.swap``).
2. The current state is in the store (a ``backup`` version, or an existing
   version with the same content) before the swap.
3. A journal exists from just before the swap until the old tree is removed;
   :func:`recover` finishes or undoes whatever a crash interrupted.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from amber import clock, faults
from amber.catalog import queries
from amber.errors import Conflict
from amber.ops import locks, manifest, swap
from amber.ops.context import Context
from amber.ops.inuse import check_idle
from amber.ops.materialize import materialize, staging_path
from amber.ops.record import commit
from amber.ops.snapshot import VersionInfo, capture, find_equal, selected, stat_rows_for
from amber.types import FileEntry, Version


def load_manifest(ctx: Context, version: Version) -> tuple[str, list[FileEntry]]:
    return manifest.decode(ctx.store.get(version.manifest))


def backup(
    ctx: Context, folder: str, model: str, model_id: int, target: Version, select: str | None
) -> tuple[str | None, str | None, list[FileEntry]]:
    """Back up ``folder``: (new backup id, None) or (None, id of the equal version),
    plus the folder's entries as they were just read."""
    if not os.path.lexists(folder):
        return None, None, []
    cap = capture(ctx, folder, model_id, select)
    current = cap.entries if cap.root == "dir" else []
    equal = find_equal(ctx, model_id, cap.manifest_id)
    if equal is not None:
        return None, equal, current
    info = VersionInfo(label=f"auto-backup before restoring {target.ref}", kind="backup")
    return commit(ctx, cap, model=model, folder=folder, info=info), None, current


def reusable(folder: str, current: list[FileEntry], wanted: list[FileEntry]) -> dict[str, str]:
    """Files of the folder that already hold exactly what the version wants (same
    chunks, same mode): staging hard-links them instead of writing them again."""
    have = {e.path: e for e in current if e.type == "file"}
    out = {}
    for e in wanted:
        old = have.get(e.path)
        if e.type == "file" and old is not None and (old.chunks, old.mode) == (e.chunks, e.mode) and e.size:
            out[e.path] = os.path.join(folder, e.path)
    return out


def keep_others(folder: str, staging: str, select: str) -> None:
    """Hard-link into ``staging`` every entry of ``folder`` that ``select`` does not pick.

    Restoring one DeepFaceLab model of a shared folder must leave the other
    models' files exactly as they are (same bytes, same inodes).
    """
    mine = selected(folder, select) or set()
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name in mine:
                continue
            target = os.path.join(staging, entry.name)
            if entry.is_symlink():
                os.symlink(os.readlink(entry.path), target)
            elif entry.is_dir():
                shutil.copytree(entry.path, target, symlinks=True, copy_function=os.link)
            else:
                os.link(entry.path, target)


def restore(
    ctx: Context, version: Version, folder: str, *, force: bool, select: str | None = None
) -> tuple[str | None, str | None]:
    """Make ``folder`` equal ``version`` (with ``select``: only that model's files). Returns
    (backup id, equal version id)."""
    with locks.model(ctx.amber, version.model), locks.store(ctx.amber, exclusive=False):
        if not force and os.path.lexists(folder):
            check_idle(folder, os.path.relpath(folder))
        model_id = ctx.catalog.query("SELECT id FROM models WHERE name = ?", (version.model,))[0]["id"]
        root, entries = load_manifest(ctx, version)
        backup_id, equal_id, current = backup(ctx, folder, version.model, model_id, version, select)
        faults.crash_point("restore.backup_done")
        staging = staging_path(folder, "staging")
        doc: dict[str, Any] = {
            "op": "restore",
            "phase": "staging",
            "model": version.model,
            "version": version.id,
            "folder": folder,
            "staging": staging,
            "old": swap.identity(folder),
            "new": None,
            "read_ns": clock.now_ns(),
        }
        swap.write_journal(ctx.amber, version.model, doc)  # from here on a crash is cleaned up
        try:
            reuse = reusable(folder, current, entries) if root == "dir" else {}
            materialize(ctx, root, entries, staging, reuse=reuse)
            if root == "dir" and os.path.isdir(folder):
                if select:
                    keep_others(folder, staging, select)
                os.chmod(staging, os.stat(folder).st_mode & 0o7777)
            faults.crash_point("restore.staged")
            doc |= {"phase": "ready", "new": swap.identity(staging)}
            swap.write_journal(ctx.amber, version.model, doc)
            faults.crash_point("restore.journaled")
        except BaseException:
            swap.remove_tree(staging)
            swap.clear_journal(ctx.amber, version.model)
            raise
        try:
            swap.swap_in(staging, folder)
        except BaseException:
            _recover_one(ctx, doc)  # whichever side of the swap we are on, settle it
            raise
        faults.crash_point("restore.swapped")
        _finish(ctx, doc, swapped=True, known=(root, entries))  # no store read after the swap
    return backup_id, equal_id


def _record_head(ctx: Context, doc: dict[str, Any], known: tuple[str, list[FileEntry]] | None) -> None:
    """The folder now holds ``doc['version']``: make it the model's head."""
    rows = ctx.catalog.query("SELECT model_id FROM versions WHERE id = ?", (doc["version"],))
    if not rows:
        return
    model_id = rows[0]["model_id"]
    root, entries = known or manifest.decode(ctx.store.get(_manifest_of(ctx, doc["version"])))
    stat_rows = stat_rows_for(doc["folder"], root, entries, doc["read_ns"])
    with ctx.catalog.transaction() as db:
        db.execute("UPDATE models SET head = ? WHERE id = ?", (doc["version"], model_id))
        queries.replace_stat_cache(db, model_id, stat_rows)


def _manifest_of(ctx: Context, version_id: str) -> str:
    return str(ctx.catalog.query("SELECT manifest FROM versions WHERE id = ?", (version_id,))[0]["manifest"])


def _finish(
    ctx: Context, doc: dict[str, Any], *, swapped: bool, known: tuple[str, list[FileEntry]] | None = None
) -> None:
    if swapped:
        _record_head(ctx, doc, known)
        faults.crash_point("restore.committed")
    for leftover in (doc["staging"], doc["staging"] + ".old"):
        if swap.identity(leftover) in (doc["old"], doc["new"]):
            swap.remove_tree(leftover)
    swap.clear_journal(ctx.amber, doc["model"])


def recover(ctx: Context) -> list[str]:
    """Finish or undo restores a crash interrupted; return what was done."""
    folder = os.path.join(ctx.amber, "journal")
    done: list[str] = []
    if not os.path.isdir(folder):
        return done
    for name in sorted(os.listdir(folder)):
        doc = swap.read_journal(os.path.join(folder, name))
        if doc is None or doc.get("op") != "restore":
            continue
        try:
            with locks.model(ctx.amber, doc["model"], wait=False):
                done.append(_recover_one(ctx, doc))
        except Conflict:  # a live restore holds it; the next command tries again
            continue
    return done


def _recover_one(ctx: Context, doc: dict[str, Any]) -> str:
    if doc.get("phase") == "staging":  # died while staging: the folder was never touched
        swap.remove_tree(doc["staging"])
        swap.clear_journal(ctx.amber, doc["model"])
        return f"removed an unfinished restore's staging folder beside {doc['folder']}"
    now = swap.identity(doc["folder"])
    old_aside = doc["staging"] + ".old"
    if now is not None and now == doc["new"]:
        _finish(ctx, doc, swapped=True)
        return f"finished restoring {doc['folder']}"
    if now is None and doc["old"] is not None and swap.identity(old_aside) == doc["old"]:
        os.rename(old_aside, doc["folder"])
    _finish(ctx, doc, swapped=False)
    return f"undid an interrupted restore of {doc['folder']}"

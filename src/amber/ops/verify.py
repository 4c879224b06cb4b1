"""Verify: is every version whole? Catalog, manifests, and (with data) every chunk."""

from __future__ import annotations

import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from amber.errors import AmberError
from amber.ops import manifest
from amber.ops.context import Context
from amber.types import Problem, Report


def verify(ctx: Context, *, data: bool) -> Report:
    with ctx.catalog.snapshot():
        return _verify(ctx, data=data)


def _verify(ctx: Context, *, data: bool) -> Report:
    report = Report()
    cat = ctx.catalog
    for line in cat.integrity():
        report.problems.append(Problem("catalog", "catalog.db", line))
    if report.problems:
        return report
    refs = _refs_by_chunk(ctx)
    versions = cat.query("SELECT v.id, v.manifest, v.number, m.name FROM versions v JOIN models m ON m.id = v.model_id")
    report.versions = len(versions)
    for v in versions:
        _check_manifest(ctx, v, refs, report)
    rows = cat.query("SELECT id, stored_size FROM chunks")
    report.chunks = len(rows)
    present = set(ctx.store.ids())
    report.orphans = len(present - {r["id"] for r in rows})
    to_hash = []
    for r in rows:
        if r["id"] not in present:
            report.problems.append(Problem("missing", r["id"], "chunk file is missing", refs.get(r["id"], [])))
        elif os.path.getsize(ctx.store.path(r["id"])) != r["stored_size"]:
            report.problems.append(Problem("size", r["id"], "chunk file has the wrong size", refs.get(r["id"], [])))
        elif data:
            to_hash.append(r["id"])
    if data:
        _hash_all(ctx, to_hash, refs, report)
    return report


def _refs_by_chunk(ctx: Context) -> dict[str, list[str]]:
    refs: dict[str, list[str]] = defaultdict(list)
    for r in ctx.catalog.query(
        "SELECT vc.chunk_id, m.name, v.number FROM version_chunks vc JOIN versions v ON v.id = vc.version_id "
        "JOIN models m ON m.id = v.model_id ORDER BY m.name, v.number"
    ):
        refs[r["chunk_id"]].append(f"{r['name']}:v{r['number']}")
    return refs


def _check_manifest(ctx: Context, v: object, refs: dict[str, list[str]], report: Report) -> None:
    ref = f"{v['name']}:v{v['number']}"  # type: ignore[index]
    mid = v["manifest"]  # type: ignore[index]
    try:
        _, entries = manifest.decode(ctx.store.get(mid))
    except AmberError as exc:
        report.problems.append(Problem("manifest", mid, f"manifest of {ref}: {exc.message}", [ref]))
        return
    for e in entries:
        for oid, _ in e.chunks:
            if ref not in refs.get(oid, []):
                report.problems.append(
                    Problem("catalog", oid, f"{ref} needs chunk {oid[:12]} but the catalog does not say so", [ref])
                )
                return


def _hash_all(ctx: Context, ids: list[str], refs: dict[str, list[str]], report: Report) -> None:
    def check(oid: str) -> tuple[str, int, str | None]:
        try:
            raw = ctx.store.get(oid)
        except AmberError as exc:
            return oid, 0, exc.message
        return oid, len(raw), None

    with ThreadPoolExecutor(max_workers=ctx.workers) as pool:
        for oid, n, error in pool.map(check, ids):
            report.bytes_checked += n
            if error:
                report.problems.append(Problem("damaged", oid, error, refs.get(oid, [])))

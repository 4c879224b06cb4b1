"""One Amber operation through the Python API, in its own process; prints JSON.

    python benchmarks/storage_amber.py init REPO
    python benchmarks/storage_amber.py snapshot REPO FOLDER MODEL ITERATION
    python benchmarks/storage_amber.py export REPO REF DEST
    python benchmarks/storage_amber.py du REPO
    python benchmarks/storage_amber.py attribute REPO MODEL

``seconds`` is the time of the API call alone (``cpu_seconds`` its CPU time, all threads); the storage benchmark also
times the whole process (interpreter start and imports included) from
outside. ``import_rss_mb`` is the resident set before the call, so the
call's own memory shows as ``peak_rss_mb`` minus it.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def run(op: str, repo_path: str, rest: list[str]) -> dict[str, Any]:
    import amber

    base = _status_mb("VmRSS")
    start, cpu = time.perf_counter(), time.process_time()
    out: dict[str, Any] = {}
    if op == "init":
        amber.Repo.init(repo_path).close()
    elif op == "snapshot":
        folder, model, iteration = rest
        with amber.Repo(repo_path) as repo:
            v = repo.snapshot(folder, model=model, iteration=int(iteration))
        out = {"ref": v.ref, "size_bytes": v.size_bytes, "model_type": v.model_type}
    elif op == "export":
        ref, dest = rest
        with amber.Repo(repo_path) as repo:
            repo.export(ref, dest)
    elif op == "du":
        with amber.Repo(repo_path) as repo:
            out = repo.du().to_json()
    elif op == "attribute":
        out = attribute(amber.Repo(repo_path), rest[0])
    else:
        raise SystemExit(f"unknown operation {op!r}")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"op": op, "seconds": seconds, "cpu_seconds": cpu, "import_rss_mb": base, "peak_rss_mb": _status_mb("VmHWM"),
            **out}  # fmt: skip


def attribute(repo: Any, model: str) -> dict[str, Any]:
    """Raw and stored bytes per file path and per codec, each chunk counted where it first appears."""
    import os
    import sqlite3

    db = sqlite3.connect(f"file:{os.path.join(repo.path, '.amber', 'catalog.db')}?mode=ro", uri=True)
    chunks = {cid: (raw, stored, codec) for cid, raw, stored, codec in
              db.execute("SELECT id, raw_size, stored_size, codec FROM chunks")}  # fmt: skip
    db.close()
    seen: set[str] = set()
    files: dict[str, dict[str, int]] = {}
    codecs: dict[str, dict[str, int]] = {}
    for version in sorted(repo.versions(model), key=lambda v: v.number):
        for entry in repo.get(version.ref, files=True).files or ():
            if entry.type != "file":
                continue
            row = files.setdefault(entry.path, {"raw": 0, "stored": 0})
            row["raw"] += entry.size
            for cid, _size in entry.chunks:
                if cid in seen or cid not in chunks:
                    continue
                seen.add(cid)
                raw, stored, codec = chunks[cid]
                row["stored"] += stored
                mix = codecs.setdefault(str(codec), {"chunks": 0, "raw": 0, "stored": 0})
                mix["chunks"] += 1
                mix["raw"] += raw
                mix["stored"] += stored
    return {"files": files, "codecs": codecs}


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1], sys.argv[2], sys.argv[3:])))

"""Run one Amber operation through the Python API and print its figures as JSON.

The benchmark starts this in a fresh process per operation, so the process's
peak RSS is the operation's (plus the interpreter and Amber's imports, which
are reported separately as ``base_rss_mb``).

    python benchmarks/amber_op.py init REPO
    python benchmarks/amber_op.py snapshot REPO FOLDER MODEL
    python benchmarks/amber_op.py restore REPO REF
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def main(argv: list[str]) -> dict[str, Any]:
    import amber

    op, repo_path, *rest = argv
    base = _rss_mb()
    start = time.perf_counter()
    if op == "init":
        amber.Repo.init(repo_path).close()
        result: dict[str, Any] = {}
    elif op == "snapshot":
        folder, model = rest
        with amber.Repo(repo_path) as repo:
            v = repo.snapshot(folder, model=model)
        result = {"ref": v.ref, "size_bytes": v.size_bytes, "stored_bytes": v.stored_bytes}
    elif op == "restore":
        (ref,) = rest
        with amber.Repo(repo_path) as repo:
            r = repo.restore(ref, force=True)
        result = {
            "ref": r.version.ref,
            "backup": r.backup.ref if r.backup else None,
            "equal_to": r.equal_to.ref if r.equal_to else None,
        }
    else:
        raise SystemExit(f"unknown operation {op!r}")
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"op": op, "seconds": seconds, "base_rss_mb": base, "self_peak_rss_mb": peak, **result}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))

"""Run one Amber operation through the Python API and print its figures as JSON.

The benchmark starts this in a fresh process per operation, so the process's
peak RSS is the operation's (plus the interpreter and Amber's imports, which
are reported separately as ``base_rss_mb``). The peak is the kernel's
``VmHWM`` for this process image: unlike ``ru_maxrss``, it does not inherit
the high-water mark of the (large) parent that forked us.

    python benchmarks/amber_op.py init REPO
    python benchmarks/amber_op.py snapshot REPO FOLDER MODEL
    python benchmarks/amber_op.py restore REPO REF
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
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def main(argv: list[str]) -> dict[str, Any]:
    import amber

    op, repo_path, *rest = argv
    base = _status_mb("VmRSS")
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
    return {"op": op, "seconds": seconds, "base_rss_mb": base, "peak_rss_mb": _status_mb("VmHWM"), **result}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))

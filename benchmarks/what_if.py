"""What if Amber did it differently? Time snapshot and restore with one change patched in.

    .venv/bin/python benchmarks/what_if.py [--size-gb 1.0] [--tries 3] [--work DIR]

Each variant runs in its own process, which patches Amber (in memory only;
``src/`` is never touched) and then runs the operation as ``amber_op.py``
does. Variants run interleaved, ``--tries`` times each, in fresh repositories,
so a busy neighbour slows them alike; the fastest and the median are shown.

Variants (the names Amber's internals have today; a missing one is reported):

* ``as-is``: Amber unchanged.
* ``workers=4``: four chunk workers instead of one per core, to overlap fsync waits.
* ``syncfs``: no fsync per object or restored file; one ``syncfs(2)`` of the
  repository's filesystem before anything is committed or swapped.
* ``fast-ungroup``: byte ungrouping built with shifts and ors on whole
  elements (uint16/32/64) instead of numpy copies (same bytes out).
* ``window=16``: 16 chunks in flight (Amber: two per worker) when snapshotting
  and restoring, so one slow chunk does not stall the pipeline.
* ``pwrite``: restore workers write each decoded chunk at its offset (``os.pwrite``)
  instead of handing it to the main thread, which wrote every byte.
* ``ungroup+pwrite``: the two restore changes together.
* ``all``: every change above.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import limits  # noqa: E402
import modelgen  # noqa: E402

VARIANTS = ("as-is", "workers=4", "syncfs", "window=16", "fast-ungroup", "pwrite", "ungroup+pwrite", "all")
WINDOW = 16


def _fast_ungroup(data: bytes, itemsize: int) -> bytes:
    """Whole little-endian elements from byte planes with shifts and ors on wide integers."""
    whole = len(data) - len(data) % itemsize
    wide = {2: np.uint16, 4: np.uint32, 8: np.uint64}[itemsize]
    src = np.frombuffer(data, np.uint8, count=whole).reshape(itemsize, -1)
    out = src[0].astype(wide)
    for k in range(1, itemsize):
        out |= src[k].astype(wide) << wide(8 * k)
    return out.tobytes() + data[whole:] if whole < len(data) else out.tobytes()


def _parallel_write_file(ctx: Any, pool: Any, path: str, entry: Any) -> None:
    """materialize._write_file, but each worker fetches, decodes and pwrites its own chunk."""
    from collections import deque

    def one(oid: str, offset: int) -> None:
        view = memoryview(ctx.store.get(oid))
        size = len(view)
        while view:
            n = os.pwrite(fd, view, offset)
            view, offset = view[n:], offset + n
        ctx.progress.advance(size)

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        inflight: deque[Any] = deque()
        offset = 0
        for oid, size in entry.chunks:
            inflight.append(pool.submit(one, oid, offset))
            offset += size
            if len(inflight) > 2 * ctx.workers:
                inflight.popleft().result()
        while inflight:
            inflight.popleft().result()
        os.fchmod(fd, entry.mode)
        os.fsync(fd)
    finally:
        os.close(fd)


def _windowed_write_file(ctx: Any, pool: Any, path: str, entry: Any) -> None:
    """materialize._write_file with ``WINDOW`` chunks in flight; the main thread writes them in order."""
    from collections import deque

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        inflight: deque[Any] = deque()
        chunks = iter(entry.chunks)
        for oid, _ in chunks:
            inflight.append(pool.submit(ctx.store.get, oid))
            if len(inflight) >= WINDOW:
                break
        while inflight:
            data = memoryview(inflight.popleft().result())
            nxt = next(chunks, None)
            if nxt is not None:
                inflight.append(pool.submit(ctx.store.get, nxt[0]))
            size = len(data)
            while data:
                data = data[os.write(fd, data) :]
            ctx.progress.advance(size)
        os.fchmod(fd, entry.mode)
        os.fsync(fd)
    finally:
        os.close(fd)


def patch(variant: str) -> None:
    """Apply ``variant`` to the Amber modules of this process."""
    import amber.ops.materialize as materialize
    import amber.ops.restore as restore
    import amber.store.atomic as atomic
    import amber.store.codecs as codecs
    import amber.store.objects as objects

    if variant in ("workers=4", "all"):
        os.cpu_count = lambda: 4  # Context's default: min(8, cpu_count)
    if variant in ("fast-ungroup", "ungroup+pwrite", "all"):
        codecs.ungroup_bytes = _fast_ungroup
    if variant in ("pwrite", "ungroup+pwrite", "all"):
        materialize._write_file = _parallel_write_file
    if variant == "window=16":
        import amber.ops.chunking as chunking

        init = chunking.ChunkWriter.__init__

        def wide_init(self: Any, *a: Any, **k: Any) -> None:
            init(self, *a, **k)
            self.window = WINDOW

        chunking.ChunkWriter.__init__ = wide_init  # type: ignore[method-assign]
        materialize._write_file = _windowed_write_file
    if variant in ("syncfs", "all"):

        class _NoFsync:  # atomic.py and materialize.py call os.fsync; only their files skip it
            def __getattr__(self, name: str) -> Any:
                return (lambda fd: None) if name == "fsync" else getattr(os, name)

        atomic.os = materialize.os = _NoFsync()  # type: ignore[assignment]
        atomic.fsync_dir = materialize.fsync_dir = lambda path: None
        objects.fsync_dir = lambda path: None
        sync = objects.ObjectStore.sync

        def store_sync(self: Any) -> None:
            limits.syncfs(self.root)
            sync(self)

        objects.ObjectStore.sync = store_sync  # type: ignore[method-assign]
        inner = restore.materialize

        def materialize_then_syncfs(ctx: Any, root: str, entries: Any, dest: str) -> None:
            inner(ctx, root, entries, dest)
            limits.syncfs(os.path.dirname(dest))

        restore.materialize = materialize_then_syncfs


def child(argv: list[str]) -> None:
    variant, *op = argv
    import amber_op

    patch(variant)
    t0 = os.times()
    doc = amber_op.main(op)
    t1 = os.times()
    doc["cpu_seconds"] = (t1.user - t0.user) + (t1.system - t0.system)
    print(json.dumps(doc))


def _hashes(folder: str) -> dict[str, str]:
    import blake3

    out = {}
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as fh:
            out[name] = blake3.blake3(fh.read()).hexdigest()
    return out


def _run(variant: str, *op: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one operation under ``variant``."""
    os.sync()
    out = subprocess.run(
        [sys.executable, __file__, "--child", variant, *op], check=True, capture_output=True, text=True
    ).stdout
    doc = json.loads(out.strip().splitlines()[-1])
    return float(doc["seconds"]), float(doc["cpu_seconds"])


def main() -> int:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2:])
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-gb", type=float, default=1.0)
    p.add_argument("--tries", type=int, default=3)
    p.add_argument("--work", default=os.path.join(os.path.dirname(HERE), "bench-work", "what-if"))
    p.add_argument("--variants", default=",".join(VARIANTS))
    args = p.parse_args()
    work = os.path.abspath(args.work)
    shutil.rmtree(work, ignore_errors=True)
    folder = os.path.join(work, "model")
    modelgen.build(folder, int(args.size_gb * (1 << 30)))
    original = _hashes(folder)
    variants = args.variants.split(",")
    runs: dict[str, dict[str, list[tuple[float, float]]]] = {v: {"snapshot": [], "restore": []} for v in variants}
    for n in range(args.tries):
        for variant in variants:
            repo = os.path.join(work, "repo")
            shutil.rmtree(repo, ignore_errors=True)
            subprocess.run(
                [sys.executable, os.path.join(HERE, "amber_op.py"), "init", repo], check=True, capture_output=True
            )
            time.sleep(2.1)  # past the racy-clean window: the restore's backup is then a stat-cache hit
            snap = _run(variant, "snapshot", repo, folder, "bench")
            rest = _run(variant, "restore", repo, "bench:v1")
            if _hashes(folder) != original:
                raise SystemExit(f"variant {variant}: the restored folder differs from the original")
            runs[variant]["snapshot"].append(snap)
            runs[variant]["restore"].append(rest)
            print(
                f"try {n + 1} {variant:<13} snapshot {snap[0]:6.2f} s ({snap[1]:.2f} CPU s)"
                f"  restore {rest[0]:6.2f} s ({rest[1]:.2f} CPU s)",
                file=sys.stderr,
            )
    print(
        f"\n{'variant':<14}"
        + "".join(
            f"{op + ' ' + k:>22}" for op in ("snapshot", "restore") for k in ("wall best", "wall median", "CPU median")
        )
    )
    for variant, ops in runs.items():
        cells = []
        for op in ("snapshot", "restore"):
            wall, cpu = [w for w, _ in ops[op]], [c for _, c in ops[op]]
            cells += [min(wall), statistics.median(wall), statistics.median(cpu)]
        print(f"{variant:<14}" + "".join(f"{c:21.2f}s" for c in cells))
    with open(os.path.join(os.path.dirname(work), "what-if.json"), "w") as fh:
        json.dump(runs, fh, indent=1)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What-if: Amber with one suggested change patched in, on a real checkpoint sequence.

    python benchmarks/storage_whatif.py SEQUENCE_DIR VARIANT      (prints JSON; one variant per process)

Each run stores the whole sequence in a fresh repository through the Python
API, then exports the second newest version (a delta with Amber's keyframe
every 4). Only this process is patched; src/ is untouched.

Variants (each undoes or changes one choice, so its row shows what that choice is worth):

* ``baseline``: Amber as it is.
* ``no-fsync``: ``os.fsync`` and ``syncfs`` do nothing (what durability costs; not a proposal).
* ``xor-only``: no sub-delta: a float piece is coded as an XOR delta or whole.
* ``zstd-level-1``: float planes compressed with zstd level 1, as before the tuned
  fast-strategy parameters.
* ``retry-always``: a delta that lost is tried again at the next version
  (``BasePicker.RETRY_EVERY = 1``), reading and decoding its base each time.
* ``keyframe-8``: ``BasePicker.KEYFRAME_EVERY = 8``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import storage_build  # noqa: E402

VARIANTS = ("baseline", "no-fsync", "xor-only", "zstd-level-1", "retry-always", "keyframe-8")


def patch(variant: str) -> None:
    import zstandard

    from amber.ops import chunking
    from amber.store import codecs, objects

    if variant == "no-fsync":
        os.fsync = lambda fd: None
        objects.sync_filesystem = lambda root, written: None
    if variant == "xor-only":
        codecs.DELTAS = (codecs.XOR_DELTA,)  # encode_delta tries the kinds listed here
    if variant == "zstd-level-1":
        local = threading.local()  # a ZstdCompressor must not be shared between threads
        compressor = codecs._compressor

        def level1(kind: str) -> zstandard.ZstdCompressor:
            if kind != "float":
                return compressor(kind)
            if not hasattr(local, "c"):
                local.c = zstandard.ZstdCompressor(level=1)
            return local.c

        codecs._compressor = level1
    if variant == "retry-always":
        chunking.BasePicker.RETRY_EVERY = 1
    if variant == "keyframe-8":
        chunking.BasePicker.KEYFRAME_EVERY = 8


def run(seq_dir: str, variant: str) -> dict[str, Any]:
    patch(variant)
    import amber

    folders = storage_build.checkpoints(seq_dir)
    raw = sum(os.path.getsize(os.path.join(f, n)) for f in folders for n in os.listdir(f))
    work = tempfile.mkdtemp(prefix="whatif-", dir=os.path.dirname(os.path.dirname(seq_dir)))
    try:
        repo = amber.Repo.init(os.path.join(work, "repo"))
        wall = cpu = 0.0
        for folder in folders:
            t, c = time.perf_counter(), time.process_time()
            repo.snapshot(folder, model="m")
            wall, cpu = wall + time.perf_counter() - t, cpu + time.process_time() - c
        stored = repo.du().stored_bytes
        previous = folders[-2]
        size = sum(os.path.getsize(os.path.join(previous, n)) for n in os.listdir(previous))
        t, c = time.perf_counter(), time.process_time()
        repo.export(f"m:v{len(folders) - 1}", os.path.join(work, "out"))
        rwall, rcpu = time.perf_counter() - t, time.process_time() - c
        repo.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"variant": variant, "raw_bytes": raw, "stored_bytes": stored, "ratio": stored / raw,
            "snapshot_seconds": wall, "snapshot_cpu_seconds": cpu, "snapshot_mbs": raw / wall / 1e6,
            "restore_previous_seconds": rwall, "restore_previous_cpu_seconds": rcpu,
            "restore_previous_mbs": size / rwall / 1e6}  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[2] not in VARIANTS:
        raise SystemExit(f"usage: storage_whatif.py SEQUENCE_DIR {{{'|'.join(VARIANTS)}}}")
    print(json.dumps(run(sys.argv[1], sys.argv[2])))

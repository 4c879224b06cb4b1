"""What-if: Amber with one suggested change patched in, on a real checkpoint sequence.

    python benchmarks/storage_whatif.py SEQUENCE_DIR VARIANT      (prints JSON; one variant per process)

Each run stores the whole sequence in a fresh repository through the Python
API, then exports the second newest version (Amber's deepest delta with a
keyframe every 8). Only this process is patched; src/ is untouched.

Variants:

* ``baseline``: Amber as it is.
* ``no-fsync``: ``os.fsync`` does nothing (shows what durability costs; not a proposal).
* ``fast-ungroup``: ``codecs.ungroup_bytes`` copies plane by plane into an
  (n, k) array instead of one transposing copy.
* ``one-encode``: a delta is kept when it is smaller than the stored size of
  its base (the same piece one keyframe ago, whose encoded bytes were just
  read), and only otherwise is the whole chunk encoded; today the whole chunk
  is encoded too whenever the delta exceeds half the raw size.
* ``skip-lost``: a piece whose same piece in the parent version was stored
  whole after its own delta lost (Adam's ``exp_avg``, RMSprop's accumulator)
  is stored whole without fetching a base or trying a delta (the catalog would
  keep that flag per chunk; here a set in memory).
* ``keyframe-4``: ``BasePicker.KEYFRAME_EVERY = 4``.
* ``combined``: fast-ungroup + one-encode + skip-lost + keyframe-4.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import time
from typing import Any, cast

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import storage_build  # noqa: E402

VARIANTS = ("baseline", "no-fsync", "fast-ungroup", "one-encode", "skip-lost", "keyframe-4", "combined")
_base_size = threading.local()


def ungroup_per_plane(data: bytes, itemsize: int) -> bytes:
    n = len(data) // itemsize
    src = np.frombuffer(data, np.uint8, count=n * itemsize).reshape(itemsize, n)
    out = np.empty((n, itemsize), np.uint8)
    for i in range(itemsize):
        out[:, i] = src[i]
    return out.tobytes() + data[n * itemsize :]


def _patch_one_encode() -> None:
    from amber.store import codecs, objects

    get_whole = objects.ObjectStore.get_whole

    def remembering_get_whole(self: Any, oid: str) -> bytes:
        _base_size.value = self.stored_size(oid)
        return cast(bytes, get_whole(self, oid))

    def encode_delta(raw: Any, itemsize: int, base_id: str, base: bytes) -> Any:
        if len(base) != len(raw) or itemsize not in (2, 4, 8):
            return None
        payload = codecs._compressor(1).compress(codecs.group_bytes(codecs.xor(raw, base), itemsize))
        delta = [codecs.HEADER.pack(codecs.MAGIC, codecs.DELTA, itemsize, 0, len(raw)), bytes.fromhex(base_id), payload]
        if sum(map(len, delta)) < getattr(_base_size, "value", 0):
            return codecs.DELTA, delta
        codec, whole = codecs.encode(raw, itemsize)
        return (codec, whole) if sum(map(len, whole)) <= sum(map(len, delta)) else (codecs.DELTA, delta)

    objects.ObjectStore.get_whole = remembering_get_whole
    codecs.encode_delta = encode_delta


def _patch_skip_lost() -> None:
    from amber.ops import chunking
    from amber.store import codecs, objects

    lost: set[str] = set()
    put, pick = objects.ObjectStore.put, chunking.BasePicker.pick

    def remembering_put(self: Any, raw: Any, **kw: Any) -> Any:
        stored = put(self, raw, **kw)
        if kw.get("base") is not None and stored.codec != codecs.DELTA:
            lost.add(stored.id)
        return stored

    def skipping_pick(self: Any, previous: Any, index: int, size: int) -> str | None:
        if index < len(previous) and previous[index][0] in lost:
            return None
        return pick(self, previous, index, size)  # type: ignore[no-any-return]

    objects.ObjectStore.put = remembering_put
    chunking.BasePicker.pick = skipping_pick


def patch(variant: str) -> None:
    from amber.ops import chunking
    from amber.store import codecs

    if variant == "no-fsync":
        os.fsync = lambda fd: None
    if variant in ("fast-ungroup", "combined"):
        codecs.ungroup_bytes = ungroup_per_plane
    if variant in ("one-encode", "combined"):
        _patch_one_encode()
    if variant in ("skip-lost", "combined"):
        _patch_skip_lost()
    if variant in ("keyframe-4", "combined"):
        chunking.BasePicker.KEYFRAME_EVERY = 4


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

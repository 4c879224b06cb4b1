"""CPU and wall time per building block inside one Amber operation, by instrumentation.

    python benchmarks/cpu_breakdown.py snapshot REPO FOLDER MODEL
    python benchmarks/cpu_breakdown.py restore REPO REF

Wraps the leaf calls Amber makes (BLAKE3, zstd, byte grouping, CDC, pread,
write, fsync, open/rename) with timers that record wall time and the calling
thread's CPU time (``time.thread_time``), then runs the operation exactly as
``amber_op.py`` does and prints one JSON document. What no wrapper catches is
Python overhead: the process's CPU time minus the blocks' CPU time.

A sampling profiler charges a thread for wall time even while it waits for a
core (three busy threads on two cores); this charges CPU time, so the two
together tell "busy" from "starved". Wrapping touches Amber internals by name;
a name that no longer exists is reported under ``missing`` instead of failing.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

_stats: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0])  # calls, wall, cpu, bytes
_lock = threading.Lock()
_missing: list[str] = []


def _timed(name: str, fn: Callable[..., Any], size_arg: int | None = 0) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        w0, c0 = time.perf_counter(), time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            w, c = time.perf_counter() - w0, time.thread_time() - c0
            n = 0
            if size_arg is not None and len(args) > size_arg:
                try:
                    n = len(args[size_arg])
                except TypeError:
                    n = 0
            with _lock:
                s = _stats[name]
                s[0] += 1
                s[1] += w
                s[2] += c
                s[3] += n

    return wrapper


class _Proxy:
    """Times ``compress``/``decompress`` of a zstandard object (C types cannot be patched)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        if hasattr(inner, "compress"):
            self.compress = _timed("zstd compress", inner.compress)
        if hasattr(inner, "decompress"):
            self.decompress = _timed("zstd decompress", inner.decompress)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _CdcProxy:
    def __init__(self, inner: Any) -> None:
        self.cut_buf = _timed("CDC cut", inner.cut_buf)


def _patch(module: Any, attr: str, make: Callable[[Any], Any]) -> None:
    if not hasattr(module, attr):
        _missing.append(f"{module.__name__}.{attr}")
        return
    setattr(module, attr, make(getattr(module, attr)))


def install() -> None:
    import blake3

    import amber.store.atomic
    import amber.store.codecs as codecs
    import amber.store.objects

    _patch(blake3, "blake3", lambda f: _timed("BLAKE3 hash", f))
    _patch(os, "pread", lambda f: _timed("read model file (pread)", f, None))
    _patch(os, "fsync", lambda f: _timed("fsync", f, None))
    _patch(os, "write", lambda f: _timed("write", f, 1))
    _patch(os, "replace", lambda f: _timed("open/rename/unlink", f, None))
    _patch(os, "open", lambda f: _timed("open/rename/unlink", f, None))
    _patch(os, "unlink", lambda f: _timed("open/rename/unlink", f, None))
    _patch(codecs, "group_bytes", lambda f: _timed("group bytes (numpy)", f))
    _patch(codecs, "ungroup_bytes", lambda f: _timed("ungroup bytes (numpy)", f))
    _patch(codecs, "xor", lambda f: _timed("XOR delta (numpy)", f))
    for name in ("_compressor", "_decompressor"):
        _patch(codecs, name, lambda f: lambda *a: _Proxy(f(*a)))
    _patch(amber.store.objects.ObjectStore, "read_encoded", lambda f: _timed("read object file", f, None))
    try:
        import amber.ops.chunking as chunking

        _patch(chunking, "_CDC", _CdcProxy)
    except ImportError:
        _missing.append("amber.ops.chunking")


def main(argv: list[str]) -> dict[str, Any]:
    import amber_op

    install()
    t0, cpu0 = time.perf_counter(), os.times()
    result = amber_op.main(argv)
    cpu1 = os.times()
    process_cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    blocks = {k: {"calls": int(v[0]), "wall": v[1], "cpu": v[2], "bytes": int(v[3])} for k, v in _stats.items()}
    accounted = sum(b["cpu"] for b in blocks.values())
    return {
        "result": result,
        "wall": time.perf_counter() - t0,
        "process_cpu": process_cpu,
        "python_and_other_cpu": max(0.0, process_cpu - accounted),
        "blocks": dict(sorted(blocks.items(), key=lambda kv: -kv[1]["cpu"])),
        "missing": _missing,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))

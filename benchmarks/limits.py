"""What this machine can do at best: disk writes with fsync, hashing, compression.

Every figure is measured on bytes taken from the benchmark's own model folder,
in pieces of ``PIECE`` bytes (Amber's chunk size), so it is the ceiling for the
work Amber does on the same data. Throughput is input bytes per second.

One-thread figures divide by the thread's CPU time (``time.thread_time``), so
they are what one free core does even when neighbours share the machine;
two-thread figures are wall-clock and do suffer from a busy neighbour.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import blake3
import numpy as np
import zstandard

MiB = 1 << 20
PIECE = 4 * MiB
_local = threading.local()


def sample(folder: str, files: Sequence[str], total: int) -> list[tuple[bytes, int]]:
    """About ``total`` bytes from the middle of each file, weighted by size, as (piece, itemsize)."""
    sizes = {f: os.path.getsize(os.path.join(folder, f)) for f in files}
    whole = sum(sizes.values())
    out: list[tuple[bytes, int]] = []
    for name, size in sizes.items():
        want = min(size, total * size // whole) // PIECE * PIECE
        itemsize = 2 if "00003" in name or "00004" in name else 4
        with open(os.path.join(folder, name), "rb") as fh:
            fh.seek((size - want) // 2)
            for _ in range(want // PIECE):
                out.append((fh.read(PIECE), itemsize))
    return out


def _rate(fn: Callable[[bytes, int], object], pieces: Sequence[tuple[bytes, int]], threads: int) -> float:
    """Input MB/s of ``fn`` over ``pieces`` on ``threads`` threads (best of two passes).

    One thread: per CPU second of that thread. More: per wall-clock second.
    """
    nbytes = sum(len(p) for p, _ in pieces)
    best = float("inf")
    for _ in range(2):
        if threads == 1:
            start = time.thread_time()
            for piece, itemsize in pieces:
                fn(piece, itemsize)
            best = min(best, time.thread_time() - start)
        else:
            start = time.perf_counter()
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(lambda p: fn(*p), pieces))
            best = min(best, time.perf_counter() - start)
    return nbytes / best / 1e6


def _zstd(level: int) -> zstandard.ZstdCompressor:
    comp = getattr(_local, f"c{level}", None)
    if comp is None:
        comp = zstandard.ZstdCompressor(level=level)
        setattr(_local, f"c{level}", comp)
    return comp


def planes(data: bytes, itemsize: int) -> bytes:
    """Byte planes of float elements (first bytes, then second bytes, ...)."""
    arr = np.frombuffer(data, dtype=np.uint8, count=len(data) - len(data) % itemsize)
    return arr.reshape(-1, itemsize).T.tobytes()


def unplanes(data: bytes, itemsize: int) -> bytes:
    """The inverse of :func:`planes`, the same numpy way (a strided transpose copy)."""
    arr = np.frombuffer(data, dtype=np.uint8, count=len(data) - len(data) % itemsize)
    return arr.reshape(itemsize, -1).T.tobytes()


AMBER_CODEC = "amber tensor codec (grouping + fast-strategy zstd)"


def _amber_encode(data: bytes, itemsize: int) -> bytes:
    from amber.store import codecs

    return b"".join(codecs.encode(data, itemsize)[1])


def cpu_limits(pieces: Sequence[tuple[bytes, int]]) -> dict[str, dict[str, float]]:
    """MB/s for each building block, on 1 and 2 threads, plus compression ratios."""
    raw = sum(len(p) for p, _ in pieces)
    jobs: dict[str, Callable[[bytes, int], object]] = {
        "blake3": lambda d, _i: blake3.blake3(d).digest(),
        "zstd-1": lambda d, _i: _zstd(1).compress(d),
        "zstd-3": lambda d, _i: _zstd(3).compress(d),
        "byte grouping": planes,
        "byte ungrouping": lambda d, i: unplanes(d, i),
        "grouping + zstd-1": lambda d, i: _zstd(1).compress(planes(d, i)),
        "grouping + zstd-3": lambda d, i: _zstd(3).compress(planes(d, i)),
        AMBER_CODEC: lambda d, i: _amber_encode(d, i),
    }
    out: dict[str, dict[str, float]] = {}
    for name, fn in jobs.items():
        out[name] = {"mbps_1t": _rate(fn, pieces, 1), "mbps_2t": _rate(fn, pieces, 2)}
    for name, fn in (
        ("zstd-1", jobs["zstd-1"]),
        ("zstd-3", jobs["zstd-3"]),
        ("grouping + zstd-1", jobs["grouping + zstd-1"]),
        ("grouping + zstd-3", jobs["grouping + zstd-3"]),
        (AMBER_CODEC, jobs[AMBER_CODEC]),
    ):
        out[name]["ratio"] = sum(len(fn(p, i)) for p, i in pieces) / raw  # type: ignore[arg-type]
    packed = [(zstandard.ZstdCompressor(level=1).compress(planes(p, i)), len(p)) for p, i in pieces]
    dec = zstandard.ZstdDecompressor()
    out["zstd decompress"] = {
        "mbps_1t": _rate(lambda d, n: dec.decompress(d, max_output_size=n), packed, 1) * raw / _sum(packed),
    }
    out["fastcdc cut"] = _cdc_rate(pieces)
    return out


def _sum(pieces: Sequence[tuple[bytes, int]]) -> int:
    return sum(len(p) for p, _ in pieces)


def _cdc_rate(pieces: Sequence[tuple[bytes, int]]) -> dict[str, float]:
    try:
        from pyfastcdc import FastCDC
    except ImportError:
        return {}
    cdc = FastCDC(avg_size=MiB, min_size=256 << 10, max_size=PIECE)
    blocks = [b"".join(p for p, _ in pieces[i : i + 4]) for i in range(0, len(pieces), 4)]
    start = time.thread_time()
    for block in blocks:
        for _ in cdc.cut_buf(block):
            pass
    return {"mbps_1t": sum(map(len, blocks)) / (time.thread_time() - start) / 1e6}


def disk_limits(folder: str, data: Sequence[bytes], total: int, runs: int = 3) -> dict[str, list[float]]:
    """MB/s writing ``total`` bytes three ways, each timed from open to durable (fsync), ``runs`` times."""
    os.makedirs(folder, exist_ok=True)
    out: dict[str, list[float]] = {
        "one file, one fsync": [],
        "4 MiB files, fsync each": [],
        "1 MiB files, fsync each": [],
    }
    for _ in range(runs):
        out["one file, one fsync"].append(_write_big(os.path.join(folder, "big"), data, total))
        out["4 MiB files, fsync each"].append(_write_many(os.path.join(folder, "p4"), data, total // 2, 4 * MiB))
        out["1 MiB files, fsync each"].append(_write_many(os.path.join(folder, "p1"), data, total // 4, MiB))
    return out


def _write_big(path: str, data: Sequence[bytes], total: int) -> float:
    os.sync()
    start = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    written = 0
    while written < total:
        for piece in data:
            written += os.write(fd, piece)
            if written >= total:
                break
    os.fsync(fd)
    os.close(fd)
    seconds = time.perf_counter() - start
    os.unlink(path)
    return written / seconds / 1e6


def _write_many(folder: str, data: Sequence[bytes], total: int, size: int) -> float:
    """Amber's object pattern: temp file, write, fsync, rename; folder fsync at the end."""
    os.makedirs(folder, exist_ok=True)
    os.sync()
    start = time.perf_counter()
    written = 0
    for n in range(total // size):
        piece = memoryview(data[n % len(data)])[:size]
        tmp, final = os.path.join(folder, f".tmp{n}"), os.path.join(folder, f"{n:08d}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        written += os.write(fd, piece)
        os.fsync(fd)
        os.close(fd)
        os.replace(tmp, final)
    dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(dfd)
    os.close(dfd)
    seconds = time.perf_counter() - start
    for name in os.listdir(folder):
        os.unlink(os.path.join(folder, name))
    os.rmdir(folder)
    return written / seconds / 1e6


def syncfs(path: str) -> None:
    """syncfs(2) of the filesystem holding ``path``; raises if the kernel refuses."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if libc.syncfs(fd) != 0:
            raise OSError(ctypes.get_errno(), "syncfs failed")
    finally:
        os.close(fd)

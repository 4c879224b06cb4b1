"""Measure cheaper ways to do what Amber's snapshot and restore do, on the model's own bytes.

    .venv/bin/python benchmarks/alternatives.py [--work DIR] [--sample-mb 256]

Evidence for the optimisation notes in docs/benchmarks.md; it imports nothing
from Amber. Each variant runs interleaved with the others, best of ``--tries``.
CPU-bound variants are timed in thread CPU seconds, so a busy neighbour does
not skew them; the durability variants are wall-clock (they wait on the disk).
Prints MB/s of input and size ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np
import zstandard

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import limits  # noqa: E402
import modelgen  # noqa: E402

MiB = 1 << 20


def _best(fns: dict[str, Callable[[], object]], nbytes: int, tries: int) -> dict[str, float]:
    """MB/s per CPU second of this thread (robust to busy neighbours), best of ``tries``."""
    best = {k: float("inf") for k in fns}
    for _ in range(tries):
        for name, fn in fns.items():
            t = time.thread_time()
            fn()
            best[name] = min(best[name], time.thread_time() - t)
    return {k: nbytes / max(v, 1e-9) / 1e6 for k, v in best.items()}


def ungroup_numpy(data: bytes, itemsize: int) -> bytes:
    return np.frombuffer(data, np.uint8).reshape(itemsize, -1).T.tobytes()


def ungroup_planes(data: bytes, itemsize: int) -> bytes:
    """Fill each byte column from one contiguous plane: writes are strided, reads are not."""
    src = np.frombuffer(data, np.uint8).reshape(itemsize, -1)
    out = np.empty((src.shape[1], itemsize), np.uint8)
    for k in range(itemsize):
        out[:, k] = src[k]
    return out.tobytes()


def ungroup_shift(data: bytes, itemsize: int) -> bytes:
    """Build whole elements with shifts and ors on wide integers (little-endian)."""
    wide = {2: np.uint16, 4: np.uint32, 8: np.uint64}[itemsize]
    src = np.frombuffer(data, np.uint8).reshape(itemsize, -1)
    out = src[0].astype(wide)
    for k in range(1, itemsize):
        out |= src[k].astype(wide) << wide(8 * k)
    return out.tobytes()


def group_numpy(data: bytes, itemsize: int) -> bytes:
    return np.frombuffer(data, np.uint8).reshape(-1, itemsize).T.tobytes()


def codecs(pieces: Sequence[tuple[bytes, int]], tries: int) -> None:
    raw = sum(len(p) for p, _ in pieces)
    z1 = zstandard.ZstdCompressor(level=1)
    z3 = zstandard.ZstdCompressor(level=3)
    zf = zstandard.ZstdCompressor(level=-1)

    def per_plane(data: bytes, itemsize: int) -> list[bytes]:
        """zstd-1 on each byte plane; a plane that does not shrink by 3% is kept raw (no second pass)."""
        planes = np.frombuffer(data, np.uint8).reshape(-1, itemsize).T
        out = []
        for k in range(itemsize):
            plane = planes[k].tobytes()
            packed = z1.compress(plane)
            out.append(packed if len(packed) < 0.97 * len(plane) else plane)
        return out

    def top_planes(data: bytes, itemsize: int) -> list[bytes]:
        """zstd-1 only on the sign/exponent planes (the top two bytes of fp32, the top one of 16-bit)."""
        planes = np.frombuffer(data, np.uint8).reshape(-1, itemsize).T
        keep = 2 if itemsize == 4 else 1
        return [
            planes[k].tobytes() if k < itemsize - keep else z1.compress(planes[k].tobytes()) for k in range(itemsize)
        ]

    variants: dict[str, Callable[[bytes, int], object]] = {
        "zstd-3, no grouping (Amber: opaque bytes)": lambda d, i: z3.compress(d),
        "grouping + zstd-1 (Amber: tensors)": lambda d, i: z1.compress(group_numpy(d, i)),
        "grouping + zstd --fast=1": lambda d, i: zf.compress(group_numpy(d, i)),
        "grouping, zstd-1 per plane": per_plane,
        "grouping, zstd-1 on exponent planes only": top_planes,
    }

    def size_of(out: object) -> int:
        return sum(map(len, out)) if isinstance(out, list) else len(out)  # type: ignore[arg-type]

    rates = _best({k: (lambda f=f: [f(p, i) for p, i in pieces]) for k, f in variants.items()}, raw, tries)
    print(f"\ncompression on {raw / 1e6:.0f} MB of the model (one thread)")
    for name, f in variants.items():
        ratio = sum(size_of(f(p, i)) for p, i in pieces) / raw
        print(f"  {name:<44} {rates[name]:7,.0f} MB/s   stored/raw {ratio:.3f}")


def grouping(pieces: Sequence[tuple[bytes, int]], tries: int) -> None:
    raw = sum(len(p) for p, _ in pieces)
    grouped = [(group_numpy(p, i), i) for p, i in pieces]
    for (p, i), (g, _) in zip(pieces[:4], grouped[:4], strict=True):
        assert ungroup_planes(g, i) == p and ungroup_shift(g, i) == p and ungroup_numpy(g, i) == p
    fns = {
        "group: numpy .T.tobytes() (Amber)": lambda: [group_numpy(p, i) for p, i in pieces],
        "ungroup: numpy .T.tobytes() (Amber to e39af06)": lambda: [ungroup_numpy(g, i) for g, i in grouped],
        "ungroup: fill columns (Amber from e39af06)": lambda: [ungroup_planes(g, i) for g, i in grouped],
        "ungroup: shifts on uint16/32": lambda: [ungroup_shift(g, i) for g, i in grouped],
    }
    print(f"\nbyte (un)grouping on {raw / 1e6:.0f} MB (one thread)")
    for name, rate in _best(fns, raw, tries).items():
        print(f"  {name:<44} {rate:7,.0f} MB/s")


def _objects(folder: str, data: Sequence[bytes], total: int, how: str) -> float:
    """Write ``total`` bytes as 4 MiB objects (temp, write, rename), made durable ``how``."""
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    os.sync()
    t = time.perf_counter()
    fds = []
    for n in range(total // (4 * MiB)):
        tmp, final = os.path.join(folder, f".t{n}"), os.path.join(folder, f"{n:06d}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, data[n % len(data)])
        if how == "fsync each (Amber)":
            os.fsync(fd)
        elif how == "fdatasync each":
            os.fdatasync(fd)
        if how == "fsync all at the end":
            fds.append(fd)
        else:
            os.close(fd)
        os.replace(tmp, final)
    for fd in fds:
        os.fsync(fd)
        os.close(fd)
    if how == "one syncfs at the end":
        limits.syncfs(folder)
    dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(dfd)
    os.close(dfd)
    seconds = time.perf_counter() - t
    shutil.rmtree(folder)
    return total / seconds / 1e6


def durability(work: str, pieces: Sequence[tuple[bytes, int]], total: int, tries: int) -> None:
    data = [p for p, _ in pieces[:16]]
    hows = ["fsync each (Amber)", "fdatasync each", "fsync all at the end", "one syncfs at the end"]
    runs: dict[str, list[float]] = {h: [] for h in hows}
    for _ in range(tries):
        for how in hows:
            runs[how].append(_objects(os.path.join(work, "objects"), data, total, how))
    print(f"\nmaking {total / 1e6:.0f} MB of 4 MiB objects durable (single thread; MB/s, best and all runs)")
    for how, r in runs.items():
        print(f"  {how:<44} {max(r):7,.0f} MB/s   runs: {', '.join(f'{x:,.0f}' for x in r)}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", default=os.path.join(os.path.dirname(HERE), "bench-work", "alternatives"))
    p.add_argument("--sample-mb", type=int, default=256)
    p.add_argument("--tries", type=int, default=3)
    args = p.parse_args()
    work = os.path.abspath(args.work)
    shutil.rmtree(work, ignore_errors=True)
    folder = os.path.join(work, "model")
    files = modelgen.build(folder, 1 << 30)
    tensors = [f for f in files if f.endswith((".safetensors", ".pt"))]
    pieces = limits.sample(folder, tensors, args.sample_mb * MiB)
    grouping(pieces, args.tries)
    codecs(pieces, args.tries)
    durability(work, pieces, 512 * MiB, args.tries)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

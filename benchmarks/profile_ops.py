"""Where the time goes in Amber's first snapshot and its restore, thread by thread.

    .venv/bin/pip install py-spy        # once; without it only the CPU timers run
    .venv/bin/python benchmarks/profile_ops.py [--size-gb 1.0] [--work DIR] [--rate 200]

Builds the same model folder as ``core.py``; then, twice in fresh repositories,
runs the first snapshot and (after a one-shard training step and a second
snapshot) the forced restore of v1:

1. under ``py-spy record --threads --idle``: every sample of every thread goes
   in one bucket (hashing, compression, byte grouping, reads, writes, fsyncs,
   catalog, waiting, other Python). Python stacks only: a C call such as zstd
   is charged to the Python line calling it. Raw samples stay in WORK/*.spy.txt.
2. under ``cpu_breakdown.py``: wall and CPU time of each leaf call, which tells
   a thread that is busy from one that waits for a core.
"""

from __future__ import annotations

import argparse
import json
import linecache
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import modelgen  # noqa: E402

_FRAME = re.compile(r"^(?P<func>.*) \((?P<where>[^()]*)\)$")
WAIT = "waiting (idle thread)"


def _frames(stack: str) -> list[tuple[str, str, int, str]]:
    """(function, file, line, source text) per frame, root first; native frames have line 0."""
    out = []
    for raw in stack.split(";"):
        m = _FRAME.match(raw)
        if not m:
            out.append((raw, "", 0, ""))
            continue
        func, where = m.group("func"), m.group("where")
        path, _, line = where.rpartition(":")
        if path.endswith(".py") and line.isdigit():
            out.append((func, path, int(line), linecache.getline(path, int(line)).strip()))
        else:
            out.append((func, where, 0, ""))
    return out


def _bucket(func: str, path: str, text: str, restore: bool) -> str | None:
    """The bucket of one Python frame, from its function and the source line it was on."""
    name, short = os.path.basename(path), func.rsplit(".", 1)[-1]
    rules = [
        ("blake3" in text, "hash (BLAKE3)"),
        ("decompress(" in text, "decompress (zstd)"),
        (".compress(" in text, "compress (zstd)"),
        (short in ("group_bytes", "ungroup_bytes"), "ungroup bytes (numpy)" if restore else "group bytes (numpy)"),
        (short in ("xor",) or "bitwise_xor" in text, "XOR delta (numpy)"),
        ("cut_buf" in text or short == "_cdc_pieces", "CDC cutting"),
        ("os.pread" in text, "read model file"),
        (short == "read_encoded" or (name == "objects.py" and ".read(" in text), "read object file"),
        ("os.fsync" in text and name == "atomic.py", "fsync object file"),
        ("os.write" in text and name == "atomic.py", "write object file"),
        (name == "atomic.py", "open/rename object file"),
        (short == "fsync_dir", "fsync folder"),
        ("os.fsync" in text and name == "materialize.py", "fsync restored file"),
        ("os.write" in text and name == "materialize.py", "write restored file"),
        (short in ("remove_tree", "rmtree", "_rmtree_safe_fd"), "remove old tree"),
        (name in ("db.py", "queries.py", "record.py") or "sqlite" in text, "catalog (SQLite)"),
        (
            short in ("wait", "result", "_worker", "get", "join", "acquire", "shutdown")
            and name in ("threading.py", "_base.py", "thread.py", "queue.py"),
            WAIT,
        ),
        ("/formats/" in path, "format parsing"),
        (short in ("makedirs", "mkdir"), "make folders"),
        (short in ("walk", "_walk", "scandir", "stat_rows_for"), "scan / stat"),
        (short == "_find_and_load" or "importlib" in path, "imports"),
    ]
    for hit, bucket in rules:
        if hit:
            return bucket
    return None


def classify(stack: str, restore: bool) -> tuple[str, str]:
    """(bucket, innermost frame) of one sampled stack: the innermost frame a rule knows wins."""
    frames = _frames(stack)
    inner = f"{frames[-1][0]} ({os.path.basename(frames[-1][1])}:{frames[-1][2]})" if frames else "?"
    for func, path, _line, text in reversed(frames):
        bucket = _bucket(func, path, text, restore)
        if bucket:
            return bucket, inner
    return "other Python", inner


def _role(thread: str) -> str:
    if "amber-chunk" in thread:
        return "chunk workers"
    if "amber-read" in thread:
        return "read workers"
    if "MainThread" in thread:
        return "main thread"
    return "other threads"


def summarise(path: str, rate: int, restore: bool) -> dict[str, dict[str, float]]:
    """Seconds per bucket per thread role (samples / rate)."""
    table: dict[str, Counter[str]] = defaultdict(Counter)
    others: Counter[str] = Counter()
    with open(path) as fh:
        for line in fh:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            head, _, rest = stack.partition(";")
            thread = head.split(": ", 1)[-1]
            bucket, inner = classify(rest, restore)
            table[_role(thread)][bucket] += int(count)
            if bucket == "other Python":
                others[inner] += int(count)
    out = {role: {b: n / rate for b, n in c.most_common()} for role, c in table.items()}
    out["_top_other_frames"] = {k: v / rate for k, v in others.most_common(12)}
    return out


def _spy(args: argparse.Namespace, name: str, op: list[str]) -> tuple[str, dict[str, Any]]:
    out = os.path.join(args.work, f"{name}.spy.txt")
    cmd = [
        args.py_spy,
        "record",
        "--threads",
        "--idle",
        "--full-filenames",
        "--rate",
        str(args.rate),
        "--format",
        "raw",
        "--output",
        out,
        "--",
        sys.executable,
        os.path.join(HERE, "amber_op.py"),
        *op,
    ]
    os.sync()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    line = next(x for x in proc.stdout.splitlines() if x.startswith('{"op"'))
    return out, json.loads(line)


def _print(title: str, seconds: float, summary: dict[str, dict[str, float]]) -> None:
    print(f"\n## {title}: {seconds:.2f} s under the profiler")
    busy: Counter[str] = Counter()
    for role, buckets in summary.items():
        if role.startswith("_"):
            continue
        total = sum(buckets.values())
        print(f"\n{role} ({total:.2f} thread-seconds sampled)")
        for bucket, secs in buckets.items():
            print(f"  {bucket:<32} {secs:7.2f} s  {secs / total:6.1%}")
            if bucket != WAIT:
                busy[bucket] += secs
    total = sum(busy.values())
    print(f"\nall threads, busy time only ({total:.2f} thread-seconds; {seconds * 2:.2f} core-seconds available)")
    for bucket, secs in busy.most_common():
        print(f"  {bucket:<32} {secs:7.2f} s  {secs / total:6.1%}")
    print("\ninnermost Python frames of 'other' samples")
    for frame, secs in summary["_top_other_frames"].items():
        print(f"  {frame:<60} {secs:6.2f} s")


def _scenario(ws: str, folder: str, first: Any, restore: Any) -> tuple[Any, Any]:
    """First snapshot (profiled), a training step and a snapshot, then restore v1 (profiled)."""
    _run_op("init", ws)
    time.sleep(2.1)  # past Amber's racy-clean window
    os.sync()
    snap = first(["snapshot", ws, folder, "bench"])
    modelgen.training_step(os.path.join(folder, modelgen.CHANGED))
    _run_op("snapshot", ws, folder, "bench")
    os.sync()
    return snap, restore(["restore", ws, "bench:v1"])


def _run_op(*op: str) -> None:
    subprocess.run([sys.executable, os.path.join(HERE, "amber_op.py"), *op], check=True, capture_output=True)


def _instrumented(op: list[str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, os.path.join(HERE, "cpu_breakdown.py"), *op], check=True, capture_output=True, text=True
    ).stdout
    return dict(json.loads(out))


def _print_cpu(title: str, doc: dict[str, Any]) -> None:
    print(f"\n## {title}, instrumented: {doc['wall']:.2f} s wall, {doc['process_cpu']:.2f} s CPU (all threads)")
    print(f"  {'block':<26} {'calls':>6} {'MB':>7} {'wall s':>7} {'CPU s':>7}  share of CPU")
    for name, b in doc["blocks"].items():
        print(
            f"  {name:<26} {b['calls']:>6} {b['bytes'] / 1e6:>7.0f} {b['wall']:>7.2f} {b['cpu']:>7.2f}"
            f"  {b['cpu'] / doc['process_cpu']:6.1%}"
        )
    rest = doc["python_and_other_cpu"]
    print(f"  {'Python and the rest':<26} {'':>6} {'':>7} {'':>7} {rest:>7.2f}  {rest / doc['process_cpu']:6.1%}")
    if doc["missing"]:
        print(f"  (not wrapped, names gone: {', '.join(doc['missing'])})")


def main() -> int:
    p = argparse.ArgumentParser(description="Profile Amber's first snapshot and restore (py-spy + CPU timers).")
    p.add_argument("--size-gb", type=float, default=1.0)
    p.add_argument("--work", default=os.path.join(REPO_ROOT, "bench-work", "profile"))
    p.add_argument("--rate", type=int, default=200, help="samples per second per thread")
    p.add_argument(
        "--py-spy", default=shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
    )
    args = p.parse_args()
    args.work = os.path.abspath(args.work)
    shutil.rmtree(args.work, ignore_errors=True)
    folder = os.path.join(args.work, "model")
    modelgen.build(folder, int(args.size_gb * (1 << 30)))
    original = modelgen.folder_bytes(folder)
    doc: dict[str, Any] = {"model_bytes": original[0]}
    if os.path.exists(args.py_spy):
        snap, rest = _scenario(
            os.path.join(args.work, "repo-spy"),
            folder,
            lambda op: _spy(args, "snapshot", op),
            lambda op: _spy(args, "restore", op),
        )
        doc["spy"] = {
            "snapshot": {"run": snap[1], "buckets": summarise(snap[0], args.rate, False)},
            "restore": {"run": rest[1], "buckets": summarise(rest[0], args.rate, True)},
        }
        _print("first snapshot, sampled", float(snap[1]["seconds"]), doc["spy"]["snapshot"]["buckets"])
        _print("restore v1 (force), sampled", float(rest[1]["seconds"]), doc["spy"]["restore"]["buckets"])
    else:
        print(f"py-spy not found at {args.py_spy}; sampling skipped (pip install py-spy)")
    snap, rest = _scenario(os.path.join(args.work, "repo-cpu"), folder, _instrumented, _instrumented)
    doc["cpu"] = {"snapshot": snap, "restore": rest}
    _print_cpu("first snapshot", snap)
    _print_cpu("restore v1 (force)", rest)
    with open(os.path.join(args.work, "profile.json"), "w") as fh:
        json.dump(doc, fh, indent=1)
    for name in ("repo-spy", "repo-cpu", "model"):
        shutil.rmtree(os.path.join(args.work, name), ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

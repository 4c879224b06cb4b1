"""Amber's core benchmark: snapshot and restore a real model folder, against cp -a + sync.

    .venv/bin/python benchmarks/core.py [--size-gb 1.0] [--work DIR] [--repeat N] [--keep]

One run builds a model folder of real tensor files (safetensors shards in
float32/bfloat16/float16, a torch.save optimizer state, JSON configs), times
``cp -a SRC DST && sync`` as the baseline, then times Amber's first snapshot,
an unchanged re-snapshot, a re-snapshot after one shard changed (a training
step), and a forced restore of the first version. Each Amber operation runs in
its own process, so its peak RSS is measured. The same run measures the
machine's limits (disk write with fsync, BLAKE3, zstd, byte grouping) and
repeats snapshot and restore on a model a quarter the size, to show memory does
not grow with the folder. Figures go to stdout and to WORK/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import time
from typing import Any

import blake3

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import limits  # noqa: E402
import machine  # noqa: E402
import modelgen  # noqa: E402
import report  # noqa: E402

GiB = 1 << 30
MODEL = "bench"


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size-gb", type=float, default=1.0, help="model folder size in GiB (default 1.0)")
    p.add_argument("--work", default=os.path.join(REPO_ROOT, "bench-work", "core"), help="scratch folder")
    p.add_argument(
        "--small-gb", type=float, default=None, help="size of the memory-scaling run (default size/4; 0 skips)"
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="cp -a + sync, then the Amber sequence in a fresh repository, N times in turn;\n"
        "each step reports its fastest run and the median (default 3)",
    )
    p.add_argument("--skip-limits", action="store_true", help="do not measure the machine's limits")
    p.add_argument("--keep", action="store_true", help="keep the model and repository afterwards")
    p.add_argument("--quiet-wait", type=float, default=15.0, help="max seconds to wait for an idle CPU before a step")
    p.add_argument("--quiet-budget", type=float, default=30.0, help="max seconds of such waiting in the whole run")
    return p.parse_args(argv)


def _source_state() -> str:
    """The commit Amber was measured at, and whether src/ had uncommitted changes."""
    import subprocess

    def git(*a: str) -> str:
        r = subprocess.run(["git", "-C", REPO_ROOT, *a], capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "src")
    return f"{head}{' + uncommitted changes in src/' if dirty else ''}"


def _python() -> str:
    return sys.executable


def _op(*args: str) -> tuple[machine.Ran, dict[str, Any]]:
    ran = machine.run([_python(), os.path.join(HERE, "amber_op.py"), *args])
    return ran, json.loads(ran.stdout)


def _file_hashes(folder: str) -> dict[str, str]:
    out = {}
    for name in sorted(os.listdir(folder)):
        h = blake3.blake3()
        with open(os.path.join(folder, name), "rb") as fh:
            while block := fh.read(16 << 20):
                h.update(block)
        out[name] = h.hexdigest()
    return out


def _past_racy_window(folder: str) -> None:
    """Sleep until every file is older than Amber's racy-clean window (2 s), as in real use."""
    newest = max(os.stat(os.path.join(folder, f)).st_mtime for f in os.listdir(folder))
    time.sleep(max(0.0, newest + 2.1 - time.time()))


def _settle(args: argparse.Namespace, log: dict[str, float], name: str) -> None:
    """Flush dirty pages, then wait for an idle CPU, so a step measures only itself."""
    os.sync()
    t = time.monotonic()
    log[name] = machine.wait_quiet(limit=max(0.0, min(args.quiet_wait, args.quiet_budget)))
    args.quiet_budget -= time.monotonic() - t


def _step(ran: machine.Ran, doc: dict[str, Any] | None = None) -> dict[str, Any]:
    out = {
        "seconds": doc["seconds"] if doc else ran.wall,
        "process_seconds": ran.wall,
        "cpu_seconds": ran.cpu,
        "peak_rss_mb": doc["peak_rss_mb"] if doc else ran.peak_rss_mb,
        "others_cores": ran.others_cores,
    }
    if doc:
        out.update({k: v for k, v in doc.items() if k not in ("op", "seconds")})
    return out


def copy_once(args: argparse.Namespace, src: str, dst: str, idle: dict[str, float]) -> dict[str, Any]:
    """One timed ``cp -a SRC DST && sync`` (pending writes flushed before the clock starts)."""
    shutil.rmtree(dst, ignore_errors=True)
    _settle(args, idle, "cp")
    step = _step(machine.run(["sh", "-c", 'cp -a "$0" "$1" && sync', src, dst]))
    shutil.rmtree(dst, ignore_errors=True)
    return step


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest of ``runs`` (the harder target for a baseline, the fairer figure for noise that
    only ever slows a run down), with every run's seconds, their median, and the highest peak RSS."""
    best = min(runs, key=lambda r: r["seconds"])
    seconds = [r["seconds"] for r in runs]
    return {
        **best,
        "runs": seconds,
        "median": statistics.median(seconds),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
    }


def amber_sequence(args: argparse.Namespace, repo: str, folder: str, idle: dict[str, float]) -> dict[str, Any]:
    """The four timed Amber operations in a fresh repository, each in a fresh process.

    The folder ends as it began: the last step restores the first version.
    """
    steps: dict[str, Any] = {}
    shutil.rmtree(repo, ignore_errors=True)
    machine.run([_python(), os.path.join(HERE, "amber_op.py"), "init", repo])
    _settle(args, idle, "snapshot_first")
    steps["snapshot_first"] = _step(*_op("snapshot", repo, folder, MODEL))
    _settle(args, idle, "snapshot_unchanged")
    steps["snapshot_unchanged"] = _step(*_op("snapshot", repo, folder, MODEL))
    modelgen.training_step(os.path.join(folder, modelgen.CHANGED))
    changed = os.path.getsize(os.path.join(folder, modelgen.CHANGED))
    _settle(args, idle, "snapshot_changed")
    steps["snapshot_changed"] = {**_step(*_op("snapshot", repo, folder, MODEL)), "changed_bytes": changed}
    _settle(args, idle, "restore")
    steps["restore"] = _step(*_op("restore", repo, f"{MODEL}:v1"))
    return steps


def fastest(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per step, the :func:`summary` of its runs."""
    return {key: summary([r[key] for r in runs]) for key in runs[0]}


def codec_mix(repo: str) -> dict[str, dict[str, int]]:
    """Raw and stored bytes per codec, read from the catalog (empty if its layout differs)."""
    try:
        db = sqlite3.connect(f"file:{os.path.join(repo, '.amber', 'catalog.db')}?mode=ro", uri=True)
        rows = db.execute(
            "SELECT codec, count(*), sum(raw_size), sum(stored_size) FROM chunks GROUP BY codec"
        ).fetchall()
        db.close()
    except sqlite3.Error:
        return {}
    try:
        from amber.store.codecs import CODEC_NAMES as names
    except ImportError:
        names = {0: "raw", 1: "zstd", 2: "grouped-zstd"}
    return {names.get(c, str(c)): {"chunks": n, "raw": r, "stored": s} for c, n, r, s in rows}


def small_run(args: argparse.Namespace, size: int) -> dict[str, Any]:
    """Snapshot and restore a smaller model: peak RSS should not depend on size."""
    ws = os.path.join(args.work, "small")
    shutil.rmtree(ws, ignore_errors=True)
    folder = os.path.join(ws, "model")
    modelgen.build(folder, size, seed=7)
    size = modelgen.folder_bytes(folder)[0]
    machine.run([_python(), os.path.join(HERE, "amber_op.py"), "init", ws])
    time.sleep(2.1)  # past Amber's racy-clean window, as in the main run
    idle: dict[str, float] = {}
    _settle(args, idle, "small")
    snap = _step(*_op("snapshot", ws, folder, MODEL))
    _settle(args, idle, "small")
    rest = _step(*_op("restore", ws, f"{MODEL}:v1"))
    if not args.keep:
        shutil.rmtree(ws, ignore_errors=True)
    return {"size_bytes": size, "snapshot": snap, "restore": rest}


def measure_limits(args: argparse.Namespace, folder: str, files: list[str], size: int) -> dict[str, Any]:
    tensors = [f for f in files if f.endswith((".safetensors", ".pt"))]
    pieces = limits.sample(folder, tensors, min(size, 256 << 20))
    idle: dict[str, float] = {}
    _settle(args, idle, "limits")
    out: dict[str, Any] = {"sample_bytes": sum(len(p) for p, _ in pieces), "cpu": limits.cpu_limits(pieces)}
    _settle(args, idle, "disk")
    total = min(GiB, max(size, 64 << 20))  # 1 GiB, or the folder's size if smaller
    out["disk"] = limits.disk_limits(os.path.join(args.work, "disk-test"), [p for p, _ in pieces[:16]], total)
    shutil.rmtree(os.path.join(args.work, "disk-test"), ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    args.work = os.path.abspath(args.work)
    os.makedirs(args.work, exist_ok=True)
    fs = machine.filesystem(args.work)
    if fs["type"] in ("tmpfs", "ramfs"):
        raise SystemExit(f"{args.work} is on {fs['type']}; pass --work on a real disk")
    size = int(args.size_gb * GiB)
    folder, copy = os.path.join(args.work, "model"), os.path.join(args.work, "cp-copy")
    repos = [os.path.join(args.work, f"repo-{n + 1}") for n in range(args.repeat)]
    for old in (folder, copy, *repos):
        shutil.rmtree(old, ignore_errors=True)
    started = time.perf_counter()

    report.say(f"building a {args.size_gb:g} GiB model folder in {folder} ...")
    t = time.perf_counter()
    files = modelgen.build(folder, size)
    built = time.perf_counter() - t
    apparent, allocated = modelgen.folder_bytes(folder)
    original = _file_hashes(folder)
    idle: dict[str, float] = {}

    lim: dict[str, Any] = {}
    if not args.skip_limits:
        report.say("machine limits: disk, BLAKE3, zstd, byte (un)grouping ...")
        lim = measure_limits(args, folder, files, size)
    copies, runs = [], []
    for n, repo in enumerate(repos):  # cp and Amber take turns, so both meet the same machine
        report.say(f"run {n + 1}/{args.repeat}: cp -a + sync; amber first snapshot, unchanged, changed, restore ...")
        copies.append(copy_once(args, folder, copy, idle))
        _past_racy_window(folder)
        runs.append(amber_sequence(args, repo, folder, idle))
        restored_ok = _file_hashes(folder) == original
        if not restored_ok:
            break
    if len(copies) < 2:
        copies.append(copy_once(args, folder, copy, idle))
    base = summary(copies)
    steps = fastest(runs)
    repo_apparent, repo_allocated = modelgen.folder_bytes(os.path.join(repos[0], ".amber"))
    mix = codec_mix(repos[0])

    small_gb = args.size_gb / 4 if args.small_gb is None else args.small_gb
    small = None
    if small_gb > 0:
        report.say(f"memory scaling: the same on a {small_gb:g} GiB model ...")
        small = small_run(args, int(small_gb * GiB))

    results = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "amber_source": _source_state(),
        "machine": {
            "cores": os.cpu_count(),
            "cpu": machine.cpu_model(),
            "memory_gb": round(machine.memory_gb(), 1),
            "filesystem": fs,
            "python": platform.python_version(),
            "kernel": platform.release(),
        },
        "model": {
            "files": files,
            "bytes": apparent,
            "allocated": allocated,
            "build_seconds": built,
            "changed_file": modelgen.CHANGED,
        },
        "baseline": base,
        "amber": steps,
        "restored_identical": restored_ok,
        "repository": {"bytes": repo_apparent, "allocated": repo_allocated, "codecs": mix},
        "limits": lim,
        "small": small,
        "repeat": args.repeat,
        "busy_share_before_steps": idle,
        "total_seconds": time.perf_counter() - started,
    }
    with open(os.path.join(args.work, "results.json"), "w") as fh:
        json.dump(results, fh, indent=1)
    if not args.keep:
        for old in (folder, *repos):
            shutil.rmtree(old, ignore_errors=True)
    misses = report.render(results)
    report.say(f"results: {os.path.join(args.work, 'results.json')}  ({results['total_seconds']:.0f} s in all)")
    return 1 if misses or not restored_ok else 0


if __name__ == "__main__":
    sys.exit(main())

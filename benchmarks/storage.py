"""Amber's storage benchmark: three real checkpoint sequences, stored by Amber, borg, restic, tar+zstd and cp.

    .venv/bin/python benchmarks/storage.py [--quick] [--work DIR]

One run:

1. builds (or finds, cached in WORK/sequences) three sequences of ten
   checkpoints (six with --quick) made by real training code (see storage_build.py): a GPT-2
   fully fine-tuned by the Hugging Face Trainer with AdamW state, a PEFT LoRA
   run whose folders also hold the frozen base weights, and a
   DeepFaceLab-style SAEHD model whose files are all rewritten on each save;
2. stores each sequence, in order, with every tool into a fresh repository,
   and measures stored/raw, snapshot MB/s (raw bytes / total time), the
   restore time of the newest, the second newest and the oldest version
   (with Amber's keyframe every 4 versions, v1 and v6 of ten are whole and the
   others are deltas against them: the newest and the second newest decode a
   delta, the oldest does not), and peak RSS; each
   step is its own process, timed whole (Amber's also reports its API call);
3. for Amber also: re-snapshotting an unchanged folder, snapshotting an
   identical copy (new files, equal content), and where its stored bytes went
   (per file, per codec);
4. measures what the float codecs can reach on the same tensors
   (storage_codecs.py), and checks the goals of issue 4, printing PASS or
   MISS and by how much;
5. with ``--what-if``, stores the full fine-tune and DeepFaceLab sequences
   again with suggested changes patched into Amber in-process
   (storage_whatif.py), to size each suggestion on the same data.

Results go to stdout and WORK/storage-results.json. borg and restic come from
apt (``apt-get install -y borgbackup restic``); a missing tool is skipped.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import storage_build  # noqa: E402
import storage_report  # noqa: E402
import storage_tools  # noqa: E402
from storage_tools import Step  # noqa: E402

SEQUENCES = {"gpt2": "full fine-tune (GPT-2, AdamW)", "lora": "LoRA + frozen base", "dfl": "DeepFaceLab SAEHD"}
NEEDS = {"borg": ["borg"], "restic": ["restic"], "tar+zstd": ["tar", "zstd"], "cp": ["cp"], "amber": []}


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller models (about 30 MB a checkpoint), six versions")
    p.add_argument("--work", default=os.path.join(REPO_ROOT, "bench-work", "storage"),
                   help="scratch folder on a real disk (default bench-work/storage)")  # fmt: skip
    p.add_argument("--tools", default=",".join(storage_tools.TOOLS), help="comma-separated subset of the tools")
    p.add_argument("--sequences", default=",".join(SEQUENCES), help="comma-separated subset of gpt2,lora,dfl")
    p.add_argument("--sample-mb", type=float, default=None, help="tensor sample per class and version for the "
                   "codec analysis (default 8, --quick 4; 0 skips it)")  # fmt: skip
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=None,
        help="max seconds to wait for an idle CPU before each tool (default 5, --quick 0)",
    )
    p.add_argument("--what-if", type=int, default=0, metavar="N", nargs="?", const=1,
                   help="also time N runs of each patched variant of Amber (storage_whatif.py)")  # fmt: skip
    p.add_argument("--src", default=None, help="measure the amber package under this folder (e.g. a 'git archive' "
                   "export of a commit) instead of the installed one")  # fmt: skip
    p.add_argument("--keep", action="store_true", help="keep the repositories afterwards")
    p.add_argument("--strict", action="store_true", help="exit 1 if a goal is missed")
    return p.parse_args(argv)


def _filesystem(path: str) -> str:
    path, best, kind = os.path.realpath(path), "", "unknown"
    with open("/proc/mounts") as fh:
        for line in fh:
            _dev, mnt, fstype = line.split()[:3]
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best, kind = mnt, fstype
    return kind


def wait_quiet(limit: float, threshold: float = 0.25) -> float:
    """Wait up to ``limit`` s for a second with under ``threshold`` of the cores busy; the last share seen."""
    deadline = time.monotonic() + limit
    while True:
        b0, t0 = storage_tools._busy()
        time.sleep(1.0)
        b1, t1 = storage_tools._busy()
        share = (b1 - b0) / max(1, t1 - t0)
        if share < threshold or time.monotonic() > deadline:
            return share


def build(kind: str, work: str, quick: bool) -> str:
    out = os.path.join(work, "sequences", f"{kind}-quick" if quick else kind)
    if not storage_build.cached(out, storage_build.params(kind, quick)):
        storage_report.say(f"building the {SEQUENCES[kind]} sequence in {out} (cached for later runs) ...")
    cmd = [sys.executable, os.path.join(HERE, "storage_build.py"), kind, out] + (["--quick"] if quick else [])
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"building the {kind} sequence failed:\n{done.stderr[-3000:]}")
    return out


def folder_bytes(folder: str) -> int:
    return storage_tools.tree_bytes(folder)[0]


def same_tree(a: str, b: str) -> bool:
    """True if the two folders hold the same file names with the same bytes."""
    names = sorted(os.listdir(a))
    if names != sorted(os.listdir(b)):
        return False
    return all(filecmp.cmp(os.path.join(a, n), os.path.join(b, n), shallow=False) for n in names)


def _step_doc(step: Step, size: int) -> dict[str, Any]:
    doc = {"seconds": step.wall, "bytes": size, "peak_rss_mb": step.peak_rss_mb, "cpu_seconds": step.cpu,
           "others_busy": step.others_busy}  # fmt: skip
    if step.inner:
        doc["api_seconds"] = step.inner["seconds"]
        doc["api_cpu_seconds"] = step.inner["cpu_seconds"]
        doc["import_rss_mb"] = step.inner["import_rss_mb"]
    return doc


def warm(folder: str) -> None:
    """Read every file under ``folder`` once, untimed, so the timed step finds it in the page cache."""
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as fh:
                    while fh.read(16 << 20):
                        pass


def run_tool(name: str, seq: str, folders: list[str], runs: str, args: argparse.Namespace) -> dict[str, Any]:
    repo = os.path.join(runs, seq, name)
    for old in (repo, repo + "-home", repo + "-cache"):
        shutil.rmtree(old, ignore_errors=True)
    os.makedirs(os.path.dirname(repo), exist_ok=True)
    tool = storage_tools.make(name, repo, seq)
    tool.init()
    busy_before = wait_quiet(args.quiet_wait)
    sizes = [folder_bytes(f) for f in folders]
    snaps = []
    for folder, size in zip(folders, sizes, strict=True):
        warm(folder)  # the machine reclaims idle page cache: every tool reads from memory alike
        snaps.append(_step_doc(tool.snapshot(folder), size))
    apparent, allocated = storage_tools.tree_bytes(tool.stored_dir())
    out: dict[str, Any] = {"snapshots": snaps, "stored_bytes": apparent, "stored_allocated": allocated,
                           "busy_before": busy_before}  # fmt: skip
    for label, index in (("newest", len(folders) - 1), ("previous", len(folders) - 2), ("oldest", 0)):
        dest = os.path.join(runs, seq, f"restore-{name}-{label}")
        shutil.rmtree(dest, ignore_errors=True)
        warm(tool.stored_dir())
        step, where = tool.restore(index, dest)
        out[f"restore_{label}"] = {**_step_doc(step, sizes[index]), "identical": same_tree(folders[index], where)}
        shutil.rmtree(dest, ignore_errors=True)
    if isinstance(tool, storage_tools.Amber):
        out.update(amber_extras(tool, seq, folders, runs, sizes[-1]))
    if not args.keep:
        for old in (repo, repo + "-home", repo + "-cache"):
            shutil.rmtree(old, ignore_errors=True)
    return out


def amber_extras(tool: storage_tools.Amber, seq: str, folders: list[str], runs: str, size: int) -> dict[str, Any]:
    """Where the bytes went; then an unchanged re-snapshot, and a copy with equal content."""
    out: dict[str, Any] = {"du": tool.du(), "attribution": tool._op("attribute", tool.repo, seq).inner}
    out["unchanged"] = _step_doc(tool.snapshot(folders[-1]), size)
    copy = os.path.join(runs, seq, "rewritten", os.path.basename(folders[-1]))
    shutil.rmtree(os.path.dirname(copy), ignore_errors=True)
    os.makedirs(os.path.dirname(copy))
    subprocess.run(["cp", "-a", folders[-1], copy], check=True)
    time.sleep(0.2)  # past Amber's 100 ms racy-clean window, as a real save would be
    before = storage_tools.tree_bytes(tool.repo)[0]
    out["rewritten"] = {**_step_doc(tool.snapshot(copy), size), "added_bytes": storage_tools.tree_bytes(tool.repo)[0]
                        - before}  # fmt: skip
    shutil.rmtree(os.path.dirname(copy), ignore_errors=True)
    return out


def analyse(seq_dir: str, kind: str, sample_mb: float) -> dict[str, Any]:
    cmd = [sys.executable, os.path.join(HERE, "storage_codecs.py"), seq_dir, kind, "--sample-mb", str(sample_mb)]
    return dict(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))


def what_if(seq_dir: str, reps: int) -> list[dict[str, Any]]:
    """Each variant ``reps`` times, interleaved, so a busy spell hits every variant alike."""
    import storage_whatif

    out = []
    for _ in range(reps):
        for variant in storage_whatif.VARIANTS:
            cmd = [sys.executable, os.path.join(HERE, "storage_whatif.py"), seq_dir, variant]
            out.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))
    return out


def amber_source() -> dict[str, Any]:
    """Which amber the child processes import, and its commit (with uncommitted src/ changes, if any)."""
    where = subprocess.run([sys.executable, "-c", "import amber, os; print(os.path.dirname(amber.__file__))"],
                           check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    out: dict[str, Any] = {"path": where}
    git = subprocess.run(["git", "-C", where, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if git.returncode == 0 and where == os.path.join(REPO_ROOT, "src", "amber"):
        out["commit"] = git.stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO_ROOT, "status", "--porcelain", "--", "src"], capture_output=True,
                               text=True).stdout.split("\n")  # fmt: skip
        out["uncommitted"] = sorted(line[3:] for line in dirty if line.strip())
    return out


def available(tools: list[str]) -> tuple[list[str], list[str]]:
    ok: list[str] = []
    missing: list[str] = []
    for t in tools:
        (ok if all(shutil.which(b) for b in NEEDS[t]) else missing).append(t)
    return ok, missing


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    args.work = os.path.abspath(args.work)
    os.makedirs(args.work, exist_ok=True)
    fs = _filesystem(args.work)
    if fs in ("tmpfs", "ramfs"):
        raise SystemExit(f"{args.work} is on {fs}; pass --work on a real disk")
    if not os.access(storage_tools.TIME, os.X_OK):
        raise SystemExit(f"{storage_tools.TIME} is missing: apt-get install -y time")
    tools, missing = available([t.strip() for t in args.tools.split(",") if t.strip()])
    if missing:
        storage_report.say(f"skipping {', '.join(missing)}: not installed (apt-get install -y borgbackup restic)")
    sample_mb = args.sample_mb if args.sample_mb is not None else (4.0 if args.quick else 8.0)
    if args.quiet_wait is None:
        args.quiet_wait = 0.0 if args.quick else 5.0
    started = time.perf_counter()
    if args.src:
        src = os.path.abspath(args.src)
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
    runs = os.path.join(args.work, "runs")
    results: dict[str, Any] = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "quick": args.quick, "tools": tools,
                               "machine": storage_report.machine(fs), "amber": amber_source(),
                               "sequences": {}}  # fmt: skip
    for kind in [s.strip() for s in args.sequences.split(",") if s.strip()]:
        seq_dir = build(kind, args.work, args.quick)
        folders = storage_build.checkpoints(seq_dir)
        seq: dict[str, Any] = {"title": SEQUENCES[kind], "folder": seq_dir, "checkpoints": len(folders),
                               "files": sorted(os.listdir(folders[-1])),
                               "raw_bytes": sum(folder_bytes(f) for f in folders), "tools": {}}  # fmt: skip
        with open(os.path.join(seq_dir, storage_build.STAMP)) as fh:
            seq["params"] = json.load(fh)["params"]
        for name in tools:
            storage_report.say(f"{kind}: {name} ... ({time.perf_counter() - started:.0f} s)")
            seq["tools"][name] = run_tool(name, kind, folders, runs, args)
        if sample_mb > 0:
            storage_report.say(f"{kind}: codec analysis on the tensors ... ({time.perf_counter() - started:.0f} s)")
            seq["codecs"] = analyse(seq_dir, kind, sample_mb)
        if args.what_if and kind in ("gpt2", "dfl"):
            storage_report.say(f"{kind}: what-if variants of Amber ... ({time.perf_counter() - started:.0f} s)")
            seq["what_if"] = what_if(seq_dir, args.what_if)
        results["sequences"][kind] = seq
    results["seconds"] = time.perf_counter() - started
    results["goals"] = storage_report.goals(results)
    with open(os.path.join(args.work, "storage-results.json"), "w") as fh:
        json.dump(results, fh, indent=1)
    storage_report.render(results)
    storage_report.say(f"results: {os.path.join(args.work, 'storage-results.json')} "
                       f"({results['seconds']:.0f} s in all)")  # fmt: skip
    missed = any(g["verdict"] == "MISS" for g in results["goals"])
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())

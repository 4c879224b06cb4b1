"""Run `amber watch` on a folder that a DeepFaceLab-style trainer saves in bursts.

    python examples/integrations/watch_dfl.py [WORKDIR] [--saves 4]

A child process (this script with ``--writer``) plays the trainer: each save
rewrites the weight pickles (``new_SAEHD_encoder.npy``, ``new_SAEHD_decoder.npy``,
``new_SAEHD_inter.npy``) and ``new_SAEHD_data.dat`` (iteration, loss history)
one after another, writing each file in pieces with short gaps, as a slow disk
would; one save also holds a file open, half written, for longer than the
settle time. After each complete save it appends a hash of the whole folder to
``states.txt``. Meanwhile ``amber watch --every 0s --settle 1s`` snapshots the
folder. At the end every version is exported and its hash looked up in
``states.txt``: each one must be a state the writer actually finished.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

import amber

MODEL = "face"
PARTS = {"encoder": (64, 48), "inter": (48, 32), "decoder": (32, 64)}
PIECES = 4  # each file is written in this many pieces
GAP = 0.05  # seconds between pieces and between files: shorter than the settle time
HOLD = 1.6  # one save keeps a file open, half written, this long: longer than the settle time
PAUSE = 2.0  # seconds between saves: longer than the settle time


def folder_hash(folder: str) -> str:
    """A hash of every file's name and bytes (the states file itself excluded)."""
    digest = hashlib.sha256()
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            with open(path, "rb") as fh:
                digest.update(f"{name}\0".encode() + hashlib.sha256(fh.read()).digest())
    return digest.hexdigest()


def write_slowly(path: str, data: bytes, *, hold: float = 0.0) -> None:
    """Write ``data`` in pieces, in place, the way a trainer's save looks from outside."""
    step = -(-len(data) // PIECES)
    with open(path, "wb") as fh:
        for i in range(PIECES):
            fh.write(data[i * step : (i + 1) * step])
            fh.flush()
            time.sleep(hold if (hold and i == PIECES // 2) else GAP)


def save(model_dir: str, iteration: int, history: list[list[float]], rng: np.random.Generator, hold: float) -> None:
    for n, (part, shape) in enumerate(PARTS.items()):
        weights = {f"{part}/dense{i}/weight:0": rng.standard_normal(shape).astype(np.float32) for i in range(3)}
        write_slowly(
            os.path.join(model_dir, f"new_SAEHD_{part}.npy"), pickle.dumps(weights, 4), hold=hold if n == 1 else 0.0
        )
    data = {"iter": iteration, "options": {"resolution": 128, "batch_size": 8}, "loss_history": history}
    write_slowly(os.path.join(model_dir, "new_SAEHD_data.dat"), pickle.dumps(data))


def writer(model_dir: str, states: str, saves: int) -> int:
    """Play the trainer: ``saves`` saves in bursts, recording each finished state."""
    os.makedirs(model_dir, exist_ok=True)
    rng = np.random.default_rng(0)
    history: list[list[float]] = []
    for n in range(1, saves + 1):
        history.append([1.0 / n, 1.5 / n])
        save(model_dir, n * 1000, history, rng, hold=HOLD if n == 2 else 0.0)
        with open(states, "a") as fh:
            fh.write(f"{n * 1000} {folder_hash(model_dir)}\n")
        time.sleep(PAUSE)
    return 0


def wait_for_iteration(workdir: str, iteration: int, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with amber.Repo(workdir) as repo:
            if any(v.iteration == iteration for v in repo.versions()):
                return
        time.sleep(0.2)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", nargs="?", default=None)
    parser.add_argument("--saves", type=int, default=4)
    parser.add_argument("--writer", action="store_true", help="play the trainer (internal)")
    opts = parser.parse_args(argv)
    workdir = os.path.abspath(opts.workdir or tempfile.mkdtemp(prefix="amber-watch-"))
    model_dir, states = os.path.join(workdir, "model"), os.path.join(workdir, "states.txt")
    if opts.writer:
        return writer(model_dir, states, opts.saves)
    if not os.path.isdir(os.path.join(workdir, ".amber")):
        amber.Repo.init(workdir)
    os.makedirs(model_dir, exist_ok=True)
    child = subprocess.Popen([sys.executable, os.path.abspath(__file__), workdir, "--writer", f"--saves={opts.saves}"])
    watch = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "amber",
            "--repo",
            workdir,
            "watch",
            model_dir,
            "--model",
            MODEL,
            "--every",
            "0s",
            "--settle",
            "1s",
            "--keep",
            "keep-last=10",
        ],
    )
    child.wait()
    wait_for_iteration(workdir, opts.saves * 1000, timeout=30)  # the last save settles, then is snapshotted
    watch.send_signal(signal.SIGINT)  # Ctrl-C: it finishes a running snapshot and exits 0
    if watch.wait(timeout=60) != 0 or child.returncode != 0:
        return 1
    with open(states) as fh:
        produced = {digest: iteration for iteration, digest in (line.split() for line in fh)}
    bad = 0
    with amber.Repo(workdir) as repo:
        for v in reversed(repo.versions(MODEL)):
            out = os.path.join(workdir, "export", f"v{v.number}")
            os.makedirs(os.path.dirname(out), exist_ok=True)
            repo.export(v.ref, out)
            found = produced.get(folder_hash(out))
            bad += found is None
            state = f"the writer's state at iteration {found}" if found else "NOT a state the writer finished"
            print(f"{v.ref}  iteration {v.iteration}  {v.metrics}  [{v.kind}] -> {state}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Snapshots while training keeps rewriting a file: a version is one whole write, never a mix.

A writer process rewrites ``run/weights.bin`` again and again, each time with one
pattern (the file filled with one 8-byte counter), in several pieces with a flush
and a short pause between them, with pauses between patterns. Meanwhile
``amber snapshot`` runs repeatedly. Each snapshot either commits a version whose
file is one pattern, or exits 1 saying the file kept changing and commits nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tests.fault.faultkit import amber_cli, cli_env, verify_clean

import amber

WORDS = 512 * 1024  # 4 MiB of uint64 counters
SNAPSHOTS = 6

WRITER = r"""
import os, random, sys, time
import numpy as np
path, stop, mode, words, pace = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
rng = random.Random(5)
pieces = 4
n = 0
while not os.path.exists(stop):
    # a burst of saves, short or long, then a pause (a training step between saves)
    burst_end = time.monotonic() + (rng.choice([0.05, 0.3, 0.8]) if pace == "bursts" else 1e9)
    while time.monotonic() < burst_end:
        n += 1
        data = np.full(words, n, dtype=np.uint64).tobytes()
        step = len(data) // pieces
        with open(path, "r+b" if mode == "in-place" else "wb") as fh:
            for i in range(pieces):
                fh.write(data[i * step : (i + 1) * step])
                fh.flush()
                time.sleep(rng.uniform(0, 0.002))
        if os.path.exists(stop):
            break
    time.sleep(rng.choice([0.1, 0.5]))
print(n)
"""


def _one_pattern(data: bytes, mode: str) -> bool:
    """One write's pattern; with truncation, a file cut at a piece boundary (it was that, on disk) is fine too."""
    words = np.frombuffer(data, dtype=np.uint64)
    whole = len(data) == WORDS * 8 or (mode == "truncate" and len(data) % (WORDS * 2) == 0)
    return whole and bool((words == words[:1]).all())


@pytest.mark.parametrize(
    ("mode", "pace"),
    [("in-place", "bursts"), ("truncate", "bursts"), ("in-place", "nonstop")],
    ids=["in-place-bursts", "truncate-bursts", "in-place-nonstop"],
)
def test_snapshot_while_the_file_is_rewritten(work: Path, tmp_path: Path, mode: str, pace: str) -> None:
    """Bursts: the writer pauses between bursts of saves; nonstop: it never does, so snapshots must give up."""
    amber.Repo.init(work).close()
    run = work / "run"
    run.mkdir()
    weights = run / "weights.bin"
    weights.write_bytes(np.zeros(WORDS, dtype=np.uint64).tobytes())
    stop = tmp_path / "stop"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(weights), str(stop), mode, str(WORDS), pace],
        env=cli_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    committed: list[str] = []
    refused = 0
    try:
        time.sleep(0.2)
        for _ in range(SNAPSHOTS if pace == "bursts" else 3):
            proc = amber_cli("snapshot", "run", "--json", cwd=work)
            if proc.returncode == 0:
                committed.append(json.loads(proc.stdout)["id"])
                continue
            assert proc.returncode == 1, proc.stderr
            error = json.loads(proc.stderr)["error"]
            assert (error["type"], error["exit_code"]) == ("FileKeptChanging", 1)
            assert "weights.bin' kept changing while it was read" in error["message"]
            refused += 1
    finally:
        stop.touch()
        out, _ = writer.communicate(timeout=30)
    assert writer.returncode == 0
    print(f"\ntorn reads ({mode}, {pace}): {int(out)} rewrites, {len(committed)} committed, {refused} refused")

    if pace == "bursts":
        assert len(committed) >= 1  # the writer pauses often enough for some snapshot to get a clean read
    else:
        assert refused >= 1  # a file rewritten without a pause cannot be read whole
    with amber.Repo(work) as repo:
        assert sorted(committed) == sorted(v.id for v in repo.versions())  # a refused snapshot leaves nothing
        for vid in committed:
            dest = tmp_path / f"out-{vid[:12]}"
            repo.export(vid, dest)
            assert _one_pattern((dest / "weights.bin").read_bytes(), mode), f"version {vid[:12]} mixes two writes"
    verify_clean(work)

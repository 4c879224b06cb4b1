"""Several Amber processes on one repository at once: snapshots, deletes and verifies.

Workers (threads, each running CLI subprocesses one after another, for a bounded time):
two snapshot different models whose folders they change between snapshots, two
snapshot the same model, one deletes versions it picks from ``amber list``, one runs
``amber verify --data``. Every process has a timeout: hitting it is a deadlock.

At the end the versions listed are exactly those reported created minus those
reported deleted (none lost, none extra), each exports to the tree it was taken
from, and ``verify --data`` is clean.
"""

from __future__ import annotations

import json
import random
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from tests.fault.faultkit import amber_cli, model_files, tree_digest, verify_clean, write_tree

import amber
from amber.catalog.db import Catalog

ACTIVE_SECONDS = 10.0
PROCESS_TIMEOUT = 60.0


class Board:
    """What every worker reported, under one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.created: dict[str, str] = {}  # version id -> tree digest of what was snapshotted
        self.deleted: set[str] = set()
        self.runs: Counter[str] = Counter()
        self.problems: list[str] = []

    def note(self, what: str) -> None:
        with self.lock:
            self.runs[what] += 1

    def fail(self, message: str) -> None:
        with self.lock:
            self.problems.append(message)


def _run(board: Board, root: Path, who: str, *args: str) -> subprocess.CompletedProcess[str] | None:
    try:
        proc = amber_cli(*args, cwd=root, timeout=PROCESS_TIMEOUT)
    except subprocess.TimeoutExpired:
        board.fail(f"{who}: '{' '.join(args)}' still running after {PROCESS_TIMEOUT:.0f} s (deadlock?)")
        return None
    board.note(args[0])
    return proc


def _snapshotter(board: Board, root: Path, folder: Path, model: str, deadline: float, seed: int, changes: bool) -> None:
    rng = random.Random(seed)
    n = 0
    while time.monotonic() < deadline:
        if changes:
            n += 1
            write_tree(folder, model_files(seed * 1000 + n, floats=4000, extra=f"{model}{n}"))
        digest = tree_digest(folder)
        proc = _run(board, root, f"snapshot {model}", "snapshot", str(folder), "--model", model, "--json")
        if proc is None:
            return
        if proc.returncode != 0:
            board.fail(f"snapshot {model} exited {proc.returncode}: {proc.stderr.strip()}")
            continue
        with board.lock:
            board.created[json.loads(proc.stdout)["id"]] = digest
        time.sleep(rng.uniform(0, 0.05))


def _deleter(board: Board, root: Path, deadline: float, seed: int) -> None:
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        proc = _run(board, root, "list", "list", "--json")
        if proc is None:
            return
        if proc.returncode != 0:
            board.fail(f"list exited {proc.returncode}: {proc.stderr.strip()}")
            continue
        listed = [v["id"] for v in json.loads(proc.stdout)]
        if len(listed) < 4:
            time.sleep(0.2)
            continue
        victim = rng.choice(listed)
        proc = _run(board, root, "delete", "delete", victim, "--yes", "--force", "--json")
        if proc is None:
            return
        if proc.returncode != 0:
            board.fail(f"delete {victim[:12]} exited {proc.returncode}: {proc.stderr.strip()}")
            continue
        with board.lock:
            board.deleted.add(json.loads(proc.stdout)["deleted"]["id"])
        time.sleep(rng.uniform(0.1, 0.4))


def _verifier(board: Board, root: Path, deadline: float) -> None:
    while time.monotonic() < deadline:
        proc = _run(board, root, "verify", "verify", "--data", "--json")
        if proc is None:
            return
        doc = json.loads(proc.stdout) if proc.stdout.startswith("{") else {}
        if proc.returncode != 0 or doc.get("problems") != []:
            board.fail(f"verify during concurrent work: exit {proc.returncode}, {doc.get('problems') or proc.stderr}")


def test_many_processes_on_one_repository(work: Path, tmp_path: Path) -> None:
    amber.Repo.init(work).close()
    shared = work / "shared"
    write_tree(shared, model_files(99, floats=4000))
    board = Board()
    deadline = time.monotonic() + ACTIVE_SECONDS
    workers = [
        threading.Thread(target=_snapshotter, args=(board, work, work / "a", "a", deadline, 1, True)),
        threading.Thread(target=_snapshotter, args=(board, work, work / "b", "b", deadline, 2, True)),
        threading.Thread(target=_snapshotter, args=(board, work, shared, "s", deadline, 3, False)),
        threading.Thread(target=_snapshotter, args=(board, work, shared, "s", deadline, 4, False)),
        threading.Thread(target=_deleter, args=(board, work, deadline, 5)),
        threading.Thread(target=_verifier, args=(board, work, deadline)),
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(ACTIVE_SECONDS + 2 * PROCESS_TIMEOUT + 10)
    assert [w.name for w in workers if w.is_alive()] == []
    print(
        f"\nconcurrency: {sum(board.runs.values())} commands {dict(board.runs)}, "
        f"{len(board.created)} versions created, {len(board.deleted)} deleted"
    )

    assert board.problems == []
    assert board.deleted <= set(board.created)
    with amber.Repo(work) as repo:
        listed = {v.id: v for v in repo.versions()}
        assert set(board.created) - board.deleted == set(listed)
        numbers = Counter((v.model, v.number) for v in listed.values())
        assert [k for k, n in numbers.items() if n > 1] == []  # a version number is never given twice
        for vid in sorted(listed):
            dest = tmp_path / f"export-{vid[:12]}"
            repo.export(vid, dest)
            assert board.created[vid] == tree_digest(dest), f"{listed[vid].ref} does not restore bit-exact"
    verify_clean(work)
    assert board.runs["snapshot"] >= 4
    assert board.runs["delete"] >= 1


def test_verify_reads_one_consistent_catalog(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A snapshot may commit while verify runs: verify must not report damage that is not there.

    For n = 1, 2, ...: a real snapshot (another process) commits just before verify's n-th
    catalog query, until verify makes fewer than n queries.
    """
    amber.Repo.init(work).close()
    folder = work / "a"
    write_tree(folder, model_files(0, floats=2000))
    assert amber_cli("snapshot", "a", cwd=work).returncode == 0
    original = Catalog.query
    for n in range(1, 200):
        fired: list[int] = []

        def query(self: Catalog, sql: str, params: Any = (), _n: int = n, _fired: list[int] = fired) -> Any:
            _fired.append(1)
            if len(_fired) == _n:
                write_tree(folder, model_files(_n, floats=2000))
                proc = amber_cli("snapshot", "a", cwd=work, timeout=PROCESS_TIMEOUT)
                assert proc.returncode == 0, proc.stderr
            return original(self, sql, params)

        with amber.Repo(work) as repo:
            monkeypatch.setattr(Catalog, "query", query)
            report = repo.verify(data=True)
            monkeypatch.setattr(Catalog, "query", original)
        assert report.problems == [], f"a snapshot committed before verify's catalog query #{n}"
        if len(fired) < n:
            break
    print(f"\nverify: a snapshot committed before each of its {n - 1} catalog queries; no false damage")
    assert n > 2

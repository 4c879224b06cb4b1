"""EIO and ENOSPC injected into reads and writes (``AMBER_FAULT=read|write:ERRNO[:n]``).

Through the CLI: each of snapshot, restore and export, hit by each fault at its first
read or write, exits 1 with one clear error line and changes nothing.

In process, exhaustively: the fault is moved over every read and every write the
operation makes (n = 1, 2, ... until the operation no longer reaches the n-th one).
After each failure the next open of the repository finds the model folder, the
versions and the store as they were, and ``verify --data`` clean.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.conftest import tree_bytes
from tests.fault.faultkit import (
    amber_cli,
    export_tree,
    journal_entries,
    leftovers,
    model_files,
    one_error,
    snapshot_in_process,
    write_tree,
)

import amber
from amber import faults
from amber.errors import StorageError

MESSAGES = {"EIO": "Input/output error", "ENOSPC": "no space left on the device"}


@dataclass
class Scene:
    """m:v1 = A, m:v2 = B; the folder holds unsaved work C."""

    root: Path
    folder: Path
    trees: dict[str, dict[str, object]]
    v1: str
    v2: str

    def tree_of(self, vid: str) -> dict[str, object]:
        return {self.v1: self.trees["A"], self.v2: self.trees["B"]}.get(vid, self.trees["C"])


def _scene(root: Path) -> Scene:
    if root.exists():
        shutil.rmtree(root)
    root.mkdir()
    amber.Repo.init(root).close()
    folder = root / "m"
    a = write_tree(folder, model_files(1, floats=3000))
    v1 = snapshot_in_process(root, folder, "m")
    b = write_tree(folder, model_files(2, floats=3000, extra="b"))
    v2 = snapshot_in_process(root, folder, "m")
    c = write_tree(folder, model_files(3, floats=3000, extra="c"))
    return Scene(root, folder, {"A": a, "B": b, "C": c}, v1.id, v2.id)


def _assert_unchanged(scene: Scene, scratch: Path, *, backups_allowed: bool) -> None:
    """As before the failed command: the folder holds C, v1 and v2 restore, nothing half-written is left."""
    scratch.mkdir(exist_ok=True)
    with amber.Repo(scene.root) as repo:  # opening it is the next command: it recovers whatever needs it
        assert scene.trees["C"] == tree_bytes(scene.folder)
        assert leftovers(scene.root) == []
        assert leftovers(scratch) == []
        assert journal_entries(scene.root) == []
        listed = {v.id: v for v in repo.versions()}
        extra = sorted(v.kind for vid, v in listed.items() if vid not in (scene.v1, scene.v2))
        assert extra == (["backup"] if backups_allowed and extra else [])
        for vid, v in listed.items():  # the backup, if any, holds C
            assert scene.tree_of(vid) == export_tree(repo, vid, scratch / "check"), f"{v.ref} is not bit-exact"
        assert repo.verify(data=True).problems == []


@pytest.fixture
def fresh_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faults, "_counts", {})


# ---- through the CLI -------------------------------------------------------------------------

CLI_OPS = {
    "snapshot": ["snapshot", "m"],
    "restore": ["restore", "m:v1", "--yes"],
    "export": ["export", "m:v1", "out"],
}


@pytest.mark.parametrize("fault", ["read:EIO", "write:EIO", "write:ENOSPC"])
@pytest.mark.parametrize("op", sorted(CLI_OPS))
def test_cli_reports_an_io_error_and_changes_nothing(work: Path, op: str, fault: str) -> None:
    scene = _scene(work / "r")
    root = scene.root
    proc = amber_cli(*CLI_OPS[op], cwd=root, AMBER_FAULT=fault)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = one_error(proc)
    assert MESSAGES[fault.split(":")[1]] in line
    assert line.endswith("nothing was changed")
    assert not (root / "out").exists()
    _assert_unchanged(scene, work / "scratch", backups_allowed=False)


# ---- every read and every write, in process --------------------------------------------------


def _do_snapshot(scene: Scene) -> None:
    snapshot_in_process(scene.root, scene.folder, "m")


def _do_restore(scene: Scene) -> None:
    with amber.Repo(scene.root) as repo:
        repo.restore("m:v1")


def _do_export(scene: Scene) -> None:
    with amber.Repo(scene.root) as repo:
        repo.export("m:v1", scene.root / "out")


SWEEPS: dict[str, Callable[[Scene], None]] = {"snapshot": _do_snapshot, "restore": _do_restore, "export": _do_export}


def _check_success(op: str, scene: Scene, scratch: Path) -> None:
    if op == "snapshot":
        with amber.Repo(scene.root) as repo:
            assert scene.trees["C"] == export_tree(repo, "m:v3", scratch / "check")
    elif op == "restore":
        assert scene.trees["A"] == tree_bytes(scene.folder)
    else:
        assert scene.trees["A"] == tree_bytes(scene.root / "out")
    assert leftovers(scene.root) == []


@pytest.mark.parametrize("kind", ["read", "write"])
@pytest.mark.parametrize("op", sorted(SWEEPS))
def test_a_fault_at_every_io_changes_nothing(
    work: Path, op: str, kind: str, monkeypatch: pytest.MonkeyPatch, fresh_counts: None
) -> None:
    failures = 0
    for n in range(1, 400):
        scene = _scene(work / "r")
        monkeypatch.setattr(faults, "_counts", {})
        monkeypatch.setenv("AMBER_FAULT", f"{kind}:EIO:{n}")
        try:
            SWEEPS[op](scene)
        except StorageError as exc:
            monkeypatch.delenv("AMBER_FAULT")
            assert "Input/output error" in exc.message
            assert exc.message.endswith("nothing was changed")
            failures += 1
            try:
                _assert_unchanged(scene, work / "scratch", backups_allowed=op == "restore")
            except AssertionError as bad:
                raise AssertionError(f"{op}: after an injected EIO at {kind} #{n}: {bad}") from None
            continue
        monkeypatch.delenv("AMBER_FAULT")
        _check_success(op, scene, work / "scratch")
        break
    else:
        pytest.fail(f"{op} still failing after 400 injected {kind} faults")
    print(f"\n{op}: an EIO at each of its {failures} {kind}s failed cleanly")
    assert failures >= 1
    assert os.environ.get("AMBER_FAULT") is None

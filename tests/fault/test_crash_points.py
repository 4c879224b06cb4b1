"""kill -9 at every named crash point, then the next command finds a whole repository.

Each test runs one CLI command with ``AMBER_CRASH_AT=<point>`` so the process SIGKILLs
itself there, then runs ``amber verify --data`` as the next command and checks:
the repository verifies clean, every version committed before the crash is listed
and exports bit-exact, the model folder is wholly the old or wholly the new tree,
no staging folder is left beside it and no journal is left in ``.amber/journal``.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.conftest import tree_bytes
from tests.fault.faultkit import (
    SIGKILLED,
    amber_cli,
    assert_versions_restore,
    export_tree,
    journal_entries,
    leftovers,
    model_files,
    one_error,
    snapshot_in_process,
    verify_clean,
    versions_by_ref,
    write_tree,
)

import amber
from amber import faults
from amber.ops import swap

SRC = Path(amber.__file__).parent

SNAPSHOT_POINTS = ["snapshot.objects_written", "snapshot.before_commit", "snapshot.after_commit"]
# restore: (point, what the folder holds once the next command has run)
RESTORE_POINTS = [
    ("snapshot.objects_written", "old"),  # inside the automatic backup
    ("snapshot.before_commit", "old"),
    ("snapshot.after_commit", "old"),
    ("restore.backup_done", "old"),
    ("restore.staged", "old"),
    ("restore.journaled", "old"),
    ("restore.swapped", "new"),
    ("restore.committed", "new"),
]
DELETE_POINTS = ["delete.committed", "delete.unlinking"]
ALIAS_POINTS = ["alias.before_commit"]
COVERED = set(SNAPSHOT_POINTS) | {p for p, _ in RESTORE_POINTS} | set(DELETE_POINTS) | set(ALIAS_POINTS)
NOT_REACHED = {"gc.committed"}  # declared in amber.faults, called nowhere yet
BACKUP_COMMITTED = {
    "snapshot.after_commit",
    "restore.backup_done",
    "restore.staged",
    "restore.journaled",
    "restore.swapped",
    "restore.committed",
}


def points_in_source() -> set[str]:
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        found |= set(re.findall(r"crash_point\(\s*\"([^\"]+)\"", path.read_text()))
    return found


def test_every_crash_point_the_code_reaches_has_a_scenario() -> None:
    reached = points_in_source()
    assert reached <= set(faults.CRASH_POINTS)
    assert reached == COVERED
    # A point the code starts calling needs a scenario here (and leaves NOT_REACHED).
    assert set(faults.CRASH_POINTS) - reached == NOT_REACHED


@dataclass
class Scene:
    root: Path
    folder: Path
    trees: dict[str, dict[str, object]]  # A = m:v1, B = m:v2, C = the unsaved work in the folder
    v1: amber.Version
    v2: amber.Version

    def killed(self, proc: subprocess.CompletedProcess[str]) -> None:
        """The command died by SIGKILL; then the next command (verify --data) finds the repository whole."""
        assert proc.returncode == SIGKILLED, proc.stdout + proc.stderr
        verify_clean(self.root)  # opening the repository recovers whatever the kill cut short

    def committed_before(self) -> dict[str, dict[str, object]]:
        return {self.v1.id: self.trees["A"], self.v2.id: self.trees["B"]}


@pytest.fixture
def scene(work: Path) -> Scene:
    """A repository with m:v1 (tree A) and m:v2 (tree B); the folder then holds unsaved work C."""
    amber.Repo.init(work).close()
    folder = work / "m"
    trees = {"A": write_tree(folder, model_files(1))}
    v1 = snapshot_in_process(work, folder, "m")
    trees["B"] = write_tree(folder, model_files(2, extra="b"))
    v2 = snapshot_in_process(work, folder, "m")
    trees["C"] = write_tree(folder, model_files(3, extra="c"))
    return Scene(work, folder, trees, v1, v2)


@pytest.mark.parametrize("point", SNAPSHOT_POINTS)
def test_kill_during_snapshot(scene: Scene, point: str, tmp_path: Path) -> None:
    scene.killed(amber_cli("snapshot", "m", "--json", cwd=scene.root, AMBER_CRASH_AT=point))
    root, folder, trees = scene.root, scene.folder, scene.trees

    assert trees["C"] == tree_bytes(folder)  # a snapshot never writes the model folder
    assert leftovers(root) == []
    assert journal_entries(root) == []
    assert_versions_restore(root, scene.committed_before(), tmp_path)
    with amber.Repo(root) as repo:
        refs = sorted(v.ref for v in repo.versions())
        if point == "snapshot.after_commit":  # the row was committed: the version is whole
            assert refs == ["m:v1", "m:v2", "m:v3"]
            assert trees["C"] == export_tree(repo, "m:v3", tmp_path / "out")
        else:  # killed before the commit: no version, at most orphan objects
            assert refs == ["m:v1", "m:v2"]
        again = repo.snapshot(folder, model="m")
        assert len(refs) + 1 == again.number
        assert trees["C"] == export_tree(repo, again.ref, tmp_path / "out")


def test_the_renameat2_variant_really_exchanges(tmp_path: Path) -> None:
    """Otherwise the two swap variants below would test the same code."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a")
    assert swap.exchange(str(a), str(b)) is True
    assert (b / "x").read_text() == "a"
    assert not (a / "x").exists()


def test_gc_sweeps_the_objects_a_kill_left(scene: Scene) -> None:
    """snapshot.py: "a crash before the commit leaves only orphan objects, which ... gc removes"."""
    root = scene.root
    scene.killed(amber_cli("snapshot", "m", cwd=root, AMBER_CRASH_AT="snapshot.before_commit"))
    assert verify_clean(root)["orphans"] > 0
    swept = amber_cli("gc", "--keep-last", "10", "--yes", cwd=root)  # keeps every version: only orphans go
    assert swept.returncode == 0, swept.stderr
    assert verify_clean(root)["orphans"] == 0
    assert sorted(versions_by_ref(root)) == ["m:v1", "m:v2"]


# The swap is where the two modes differ; the snapshot points inside the backup run once.
RESTORE_CASES = [
    pytest.param(point, outcome, exchange, id=f"{point}-{exchange}")
    for point, outcome in RESTORE_POINTS
    for exchange in (["renameat2", "two-renames"] if point.startswith("restore.") else ["renameat2"])
]


@pytest.mark.parametrize(("point", "outcome", "exchange"), RESTORE_CASES)
def test_kill_during_restore(scene: Scene, point: str, outcome: str, exchange: str, tmp_path: Path) -> None:
    env = {"AMBER_CRASH_AT": point} | ({"AMBER_NO_EXCHANGE": "1"} if exchange == "two-renames" else {})
    scene.killed(amber_cli("restore", "m:v1", "--yes", cwd=scene.root, **env))
    root, folder, trees = scene.root, scene.folder, scene.trees

    # Wholly the old tree (unsaved work C) or wholly the new one (v1 = A), never a mix.
    assert trees["C" if outcome == "old" else "A"] == tree_bytes(folder)
    assert leftovers(root) == [], f"staging left beside the model folder after a kill at {point}"
    assert journal_entries(root) == []
    assert_versions_restore(root, scene.committed_before(), tmp_path)
    with amber.Repo(root) as repo:
        backups = [v for v in repo.versions("m") if v.kind == "backup"]
        if point in BACKUP_COMMITTED:  # the unsaved work was in the store before the swap
            assert [b.ref for b in backups] == ["m:v3"]
            assert trees["C"] == export_tree(repo, "m:v3", tmp_path / "out")
        else:
            assert backups == []
        head = {m.name: m.head for m in repo.models()}["m"]
        if outcome == "new":
            assert scene.v1.id == head
        elif point in BACKUP_COMMITTED:
            assert backups[0].id == head
        # The interrupted restore can simply be run again.
        result = repo.restore("m:v1")
        assert result.version.ref == "m:v1"
        assert trees["A"] == tree_bytes(folder)
        assert [v.ref for v in repo.versions("m") if v.kind == "backup"] == ["m:v3"]
        assert repo.verify(data=True).ok
    assert leftovers(root) == []


@pytest.mark.parametrize("command", ["delete", "gc"])
@pytest.mark.parametrize("point", DELETE_POINTS)
def test_kill_during_delete(scene: Scene, point: str, command: str, tmp_path: Path) -> None:
    root, folder, trees = scene.root, scene.folder, scene.trees
    v3 = snapshot_in_process(root, folder, "m")
    args = ["delete", "m:v2", "--yes"] if command == "delete" else ["gc", "--keep-last", "1", "--yes"]
    scene.killed(amber_cli(*args, cwd=root, AMBER_CRASH_AT=point))

    assert trees["C"] == tree_bytes(folder)
    assert leftovers(root) == []
    survivors = {v3.id: trees["C"]}
    if command == "delete":
        survivors[scene.v1.id] = trees["A"]
    assert_versions_restore(root, survivors, tmp_path)
    with amber.Repo(root) as repo:  # the delete had committed
        assert sorted(v.ref for v in repo.versions()) == (["m:v1", "m:v3"] if command == "delete" else ["m:v3"])
    again = amber_cli("delete", "m:v2", "--yes", cwd=root)
    assert again.returncode == 4
    assert "no version matches 'm:v2'" in one_error(again)
    # The deleted tree can be snapshotted again over whatever orphan files the kill left.
    write_tree(folder, model_files(2, extra="b"))
    with amber.Repo(root) as repo:
        back = repo.snapshot(folder, model="m")
        assert back.ref == "m:v4"
        assert trees["B"] == export_tree(repo, back.ref, tmp_path / "out")
        assert repo.verify(data=True).ok


@pytest.mark.parametrize("point", ALIAS_POINTS)
def test_kill_while_setting_an_alias(scene: Scene, point: str, tmp_path: Path) -> None:
    root = scene.root
    scene.killed(amber_cli("alias", "set", "m:v1", "production", cwd=root, AMBER_CRASH_AT=point))

    assert scene.trees["C"] == tree_bytes(scene.folder)
    assert_versions_restore(root, scene.committed_before(), tmp_path)
    with amber.Repo(root) as repo:
        assert {v.ref: v.aliases for v in repo.versions()} == {"m:v1": [], "m:v2": ["latest"]}
    again = amber_cli("alias", "set", "m:v1", "production", cwd=root)
    assert again.returncode == 0, again.stderr
    with amber.Repo(root) as repo:
        assert repo.get("m:v1").aliases == ["production"]

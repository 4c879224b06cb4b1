"""Damage on disk: a flipped bit, a truncated chunk, a catalog overwritten with garbage.

``verify`` finds it, exits 3 and names the versions it breaks; a restore of a broken
version fails and leaves the model folder byte-identical; versions that do not need
the damaged chunks still restore; a damaged catalog stops every command with one
line that says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.conftest import tree_bytes
from tests.fault.faultkit import (
    amber_cli,
    leftovers,
    model_files,
    object_path,
    one_error,
    snapshot_in_process,
    write_tree,
)

import amber


def _state(seed: int) -> dict[str, bytes | tuple[str, str]]:
    """A model folder with one file no other state shares (opaque bytes: stored whole, never as a delta)."""
    files = model_files(seed, floats=3000)
    files[f"only-{seed}.bin"] = os.urandom(60_000)
    return files


@dataclass
class Damaged:
    root: Path
    folder: Path
    trees: dict[int, dict[str, object]]  # by state seed


@pytest.fixture
def damaged(work: Path) -> Damaged:
    """v1..v4 (v3 holds state 4, v4 state 3); one chunk only v1 needs has a flipped bit, one only v2 needs
    is cut short; the folder holds state 3 (= v4)."""
    amber.Repo.init(work).close()
    folder = work / "m"
    trees, ids = {}, {}
    for seed in (1, 2, 4, 3):
        trees[seed] = write_tree(folder, _state(seed))
        ids[seed] = snapshot_in_process(work, folder, "m").id
    with amber.Repo(work) as repo:
        chunks = {}
        for seed in (1, 2):
            files = repo.get(ids[seed], files=True).files or ()
            chunks[seed] = [c for f in files if f.path == f"only-{seed}.bin" for c, _ in f.chunks]
    flipped, cut = object_path(work, chunks[1][0]), object_path(work, chunks[2][0])
    for path in (flipped, cut):
        os.chmod(path, 0o644)
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0x10
    flipped.write_bytes(bytes(data))
    os.truncate(cut, cut.stat().st_size // 2)
    for path in (flipped, cut):
        os.chmod(path, 0o444)
    return Damaged(work, folder, trees)


def _problem_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if "(breaks " in line]


def test_verify_data_finds_both_and_names_the_versions(damaged: Damaged) -> None:
    proc = amber_cli("verify", "--data", cwd=damaged.root)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    lines = _problem_lines(proc.stdout)
    assert len(lines) == 2, proc.stdout
    assert sorted(line.rsplit("(breaks ", 1)[1].rstrip(")") for line in lines) == ["m:v1", "m:v2"]
    assert "m:v3" not in proc.stdout
    assert "m:v4" not in proc.stdout
    assert proc.stdout.splitlines()[-1].startswith("2 problem(s): 4 versions")


def test_verify_without_data_finds_the_truncation(damaged: Damaged) -> None:
    proc = amber_cli("verify", cwd=damaged.root)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    lines = _problem_lines(proc.stdout)
    assert len(lines) == 1, proc.stdout
    assert lines[0].endswith("(breaks m:v2)")


@pytest.mark.parametrize("ref", ["m:v1", "m:v2"])
def test_restoring_a_broken_version_fails_and_leaves_the_folder(damaged: Damaged, ref: str) -> None:
    root, folder, trees = damaged.root, damaged.folder, damaged.trees
    proc = amber_cli("restore", ref, "--yes", cwd=root)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "damaged" in one_error(proc)
    assert trees[3] == tree_bytes(folder)
    assert leftovers(root) == []

    export = amber_cli("export", ref, "out", cwd=root)
    assert export.returncode == 3, export.stderr
    assert "damaged" in one_error(export)
    assert not (root / "out").exists()
    assert leftovers(root) == []


def test_versions_that_do_not_need_the_damage_still_restore(damaged: Damaged) -> None:
    root, folder, trees = damaged.root, damaged.folder, damaged.trees
    for ref, seed in (("m:v3", 4), ("m:v4", 3)):
        proc = amber_cli("restore", ref, "--yes", cwd=root)
        assert proc.returncode == 0, proc.stderr
        assert trees[seed] == tree_bytes(folder)
    assert leftovers(root) == []


CATALOG_COMMANDS = [
    ["list"],
    ["show", "m:v1"],
    ["snapshot", "m"],
    ["restore", "m:v1", "--yes"],
    ["export", "m:v1", "out"],
    ["delete", "m:v1", "--yes"],
    ["alias", "set", "m:v1", "production"],
    ["gc", "--keep-last", "1", "--yes"],
    ["verify", "--data"],
]


def test_a_damaged_catalog_stops_every_command_with_one_line(work: Path) -> None:
    amber.Repo.init(work).close()
    folder = work / "m"
    tree = write_tree(folder, model_files(1, floats=3000))
    snapshot_in_process(work, folder, "m")
    catalog = work / ".amber" / "catalog.db"
    with open(catalog, "r+b") as fh:
        fh.write(b"this is not a database, it is garbage!!" * 3)
    for args in CATALOG_COMMANDS:
        proc = amber_cli(*args, cwd=work)
        assert proc.returncode == 3, f"{args}: {proc.stdout} {proc.stderr}"
        line = one_error(proc)
        assert "catalog" in line and "damaged" in line, f"{args}: {line}"
    assert tree == tree_bytes(folder)
    assert not (work / "out").exists()
    assert leftovers(work) == []

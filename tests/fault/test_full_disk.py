"""A disk that fills up: a 40 MB tmpfs holds the repository and the model folder.

Where mounting is not allowed (not root, or no CAP_SYS_ADMIN), the same tests run with
``AMBER_FAULT=write:ENOSPC`` injected instead, and their id says so.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.conftest import tree_bytes
from tests.fault.faultkit import (
    amber_cli,
    assert_versions_restore,
    leftovers,
    one_error,
    snapshot_in_process,
    verify_clean,
    versions_by_ref,
    write_tree,
)

import amber

MB = 1_000_000


def _mount(folder: Path, size: str) -> bool:
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    return proc.returncode == 0


def _umount(folder: Path) -> None:
    if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _can_mount() -> bool:
    probe = Path(tempfile.mkdtemp(prefix="amber-mount-probe-"))
    try:
        if not _mount(probe, "1m"):
            return False
        _umount(probe)
        return True
    finally:
        probe.rmdir()


# AMBER_FAULT_NO_MOUNT=1 forces the injected variant (to test it where mounting works).
MOUNTABLE = not os.environ.get("AMBER_FAULT_NO_MOUNT") and _can_mount()
DISK = "tmpfs-40MB" if MOUNTABLE else "injected-ENOSPC-because-mount-is-not-permitted"


@dataclass
class Disk:
    root: Path  # the repository root, on the small disk
    real: bool  # a real full disk (tmpfs), else injected ENOSPC

    def free(self) -> int:
        st = os.statvfs(self.root)
        return st.f_bavail * st.f_frsize

    def env(self) -> dict[str, str]:
        return {} if self.real else {"AMBER_FAULT": "write:ENOSPC"}

    def fill(self, leave: int) -> Path:
        """Write a filler file until only ``leave`` bytes are free (or, when injecting, a token file)."""
        filler = self.root / "filler"
        with open(filler, "wb") as fh:
            block = os.urandom(MB)
            while self.real and self.free() > leave:
                try:
                    fh.write(block[: max(4096, min(MB, self.free() - leave))])
                    fh.flush()
                except OSError:
                    break
        return filler


@pytest.fixture(params=[DISK])
def disk(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Disk]:
    folder = tmp_path / "disk"
    folder.mkdir()
    real = request.param == "tmpfs-40MB"
    if real:
        assert _mount(folder, "40m")
    monkeypatch.chdir(folder)
    try:
        amber.Repo.init(folder).close()
        yield Disk(folder, real)
    finally:
        monkeypatch.chdir(tmp_path)
        if real:
            _umount(folder)


def _random_files(sizes: dict[str, int]) -> dict[str, bytes | tuple[str, str]]:
    return {name: os.urandom(size) for name, size in sizes.items()}


def _temp_objects(root: Path) -> list[str]:
    return sorted(p.name for p in (root / ".amber" / "objects").rglob(".tmp-*"))


def _assert_no_space(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 1, proc.stderr
    assert "no space left on the device" in one_error(proc)


def test_snapshot_bigger_than_the_free_space(disk: Disk, tmp_path: Path) -> None:
    model = disk.root / "m"
    small = write_tree(model, _random_files({"a.bin": MB, "notes.dat": 100}))
    v1 = snapshot_in_process(disk.root, model, "m")
    big = write_tree(model, _random_files({"a.bin": MB, "notes.dat": 100, "big.bin": 26 * MB if disk.real else MB}))
    if disk.real:
        assert disk.free() < 26 * MB

    proc = amber_cli("snapshot", "m", cwd=disk.root, **disk.env())
    _assert_no_space(proc)
    assert sorted(versions_by_ref(disk.root)) == ["m:v1"]
    assert big == tree_bytes(model)
    assert _temp_objects(disk.root) == []
    verify_clean(disk.root)
    assert_versions_restore(disk.root, {v1.id: small}, tmp_path)  # exported to another disk


def test_a_failed_snapshot_gives_its_space_back(disk: Disk) -> None:
    """The message says "nothing was changed": the chunks written before the disk filled are removed again."""
    model = disk.root / "m"
    write_tree(model, _random_files({"a.bin": MB}))
    snapshot_in_process(disk.root, model, "m")
    write_tree(model, _random_files({"a.bin": MB, "big.bin": 26 * MB if disk.real else MB}))
    free_before = disk.free()

    proc = amber_cli("snapshot", "m", cwd=disk.root, **disk.env())
    _assert_no_space(proc)
    assert verify_clean(disk.root)["orphans"] == 0
    if disk.real:  # on a shared disk the figure moves with everything else
        assert disk.free() >= free_before - MB  # the catalog may grow a little, the store may not


def test_restore_that_does_not_fit(disk: Disk, tmp_path: Path) -> None:
    model = disk.root / "m"
    large = write_tree(model, _random_files({"weights.bin": 12 * MB if disk.real else MB, "notes.dat": 100}))
    v1 = snapshot_in_process(disk.root, model, "m")
    small = write_tree(model, _random_files({"notes.dat": 100}))
    v2 = snapshot_in_process(disk.root, model, "m")
    filler = disk.fill(leave=6 * MB)

    proc = amber_cli("restore", "m:v1", "--yes", cwd=disk.root, **disk.env())
    _assert_no_space(proc)
    assert small == tree_bytes(model)  # the folder is untouched
    assert leftovers(disk.root) == []
    assert sorted(versions_by_ref(disk.root)) == ["m:v1", "m:v2"]  # the folder equals v2: no backup needed
    verify_clean(disk.root)
    assert_versions_restore(disk.root, {v1.id: large, v2.id: small}, tmp_path)

    filler.unlink()  # with room again, the same restore works
    done = amber_cli("restore", "m:v1", "--yes", cwd=disk.root)
    assert done.returncode == 0, done.stderr
    assert large == tree_bytes(model)


def test_a_full_disk_is_never_reported_as_damage(disk: Disk) -> None:
    """Exit code 3 and 'damaged' mean damage; a disk with 0 bytes free is not that."""
    model = disk.root / "m"
    write_tree(model, _random_files({"a.bin": MB}))
    snapshot_in_process(disk.root, model, "m")
    filler = disk.fill(leave=0)

    for args in (["list"], ["verify"]):
        proc = amber_cli(*args, cwd=disk.root, **disk.env())
        assert "damaged" not in proc.stderr
        if proc.returncode != 0:
            _assert_no_space(proc)
    filler.unlink()
    assert sorted(versions_by_ref(disk.root)) == ["m:v1"]
    verify_clean(disk.root)


@pytest.fixture(autouse=True)
def _no_stray_mounts(tmp_path: Path) -> Iterator[None]:
    yield
    with contextlib.suppress(OSError):
        if os.path.ismount(tmp_path / "disk"):
            _umount(tmp_path / "disk")
    shutil.rmtree(tmp_path / "disk", ignore_errors=True)

"""Restore and export write chunks of several files at once, on a worker pool.

Whatever the number of workers, every file comes back bit-exact with its mode;
at most a few chunks are held in memory at once; and a failure in any worker
(an injected write error, a damaged object) aborts the whole export, leaves no
folder behind and closes every file it opened.
"""

from __future__ import annotations

import os
import resource
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save as safetensors_bytes
from tests.conftest import tree_bytes
from tests.fault.faultkit import leftovers, npy_bytes, object_path

import amber
from amber import faults
from amber.errors import Corruption, StorageError
from amber.formats import PIECE


def _tensors(rng: np.random.Generator, mib: int, parts: int) -> dict[str, np.ndarray]:
    n = (mib << 20) // 4 // parts
    return {f"w{i}": rng.standard_normal(n, dtype=np.float32) * 0.02 for i in range(parts)}


def write_model(folder: Path, step: int) -> dict[str, object]:
    """A folder of several multi-chunk files, small and empty files, a subfolder and a link."""
    rng = np.random.default_rng(1234)  # the same weights every step; later steps nudge them
    nudge = np.random.default_rng(step)
    a, b = _tensors(rng, 9, 3), _tensors(rng, 13, 4)
    if step:
        a = {k: v + nudge.standard_normal(v.size, dtype=np.float32) * 1e-4 for k, v in a.items()}
        b = {k: v + nudge.standard_normal(v.size, dtype=np.float32) * 1e-4 for k, v in b.items()}
    (folder / "shards").mkdir(parents=True, exist_ok=True)
    (folder / "shards" / "a.safetensors").write_bytes(safetensors_bytes(a))
    (folder / "shards" / "b.safetensors").write_bytes(safetensors_bytes(b))
    (folder / "optimizer.npy").write_bytes(npy_bytes(rng.standard_normal((6 << 20) // 4, dtype=np.float32)))
    blob = bytearray(np.random.default_rng(7).bytes(5 << 20))
    blob[1000:1010] = bytes([step]) * 10
    (folder / "blob.bin").write_bytes(bytes(blob))
    (folder / "config.json").write_text(f'{{"step": {step}}}')
    (folder / "empty.txt").write_bytes(b"")
    (folder / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(folder / "run.sh", 0o755)
    os.chmod(folder / "config.json", 0o600)
    os.chmod(folder / "shards", 0o750)
    if not (folder / "latest").is_symlink():
        os.symlink("shards/a.safetensors", folder / "latest")
    return tree_bytes(folder)


@pytest.fixture
def scene(repo: amber.Repo, work: Path) -> Iterator[tuple[amber.Repo, Path, dict[str, dict[str, object]]]]:
    folder = work / "model"
    trees = {}
    for step in (0, 1):
        tree = write_model(folder, step)
        trees[repo.snapshot(folder, model="m").ref] = tree
    assert len(set(map(str, trees.values()))) == 2
    yield repo, folder, trees


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_the_scene_has_several_files_of_several_chunks(scene: Any) -> None:
    repo, _, _ = scene
    files = repo.get("m:v2", files=True).files
    big = [e for e in files if e.type == "file" and len(e.chunks) >= 3]
    assert len(big) >= 3
    assert all(size <= PIECE for e in big for _, size in e.chunks)


@pytest.mark.parametrize("workers", [1, 2, 5])
def test_export_and_restore_are_bit_exact(scene: Any, work: Path, workers: int) -> None:
    repo, folder, trees = scene
    repo._ctx.workers = workers
    before = open_fds()
    for ref, tree in trees.items():
        out = work / f"out-{ref.replace(':', '-')}"
        repo.export(ref, out)
        assert tree_bytes(out) == tree, f"export of {ref} differs"
        assert os.stat(out).st_mode & 0o777 == 0o755
    for ref in ["m:v1", "m:v2", "m:v1"]:  # unchanged files are hard-linked, the rest written
        repo.restore(ref, force=True)
        assert tree_bytes(folder) == trees[ref], f"restore of {ref} differs"
    assert open_fds() == before
    assert leftovers(work) == []


def test_a_single_file_version_exports_bit_exact(repo: amber.Repo, work: Path) -> None:
    data = npy_bytes(np.random.default_rng(3).standard_normal((10 << 20) // 4, dtype=np.float32))
    (work / "weights.npy").write_bytes(data)
    os.chmod(work / "weights.npy", 0o640)
    v = repo.snapshot(work / "weights.npy", model="w")
    repo.export(v.ref, work / "copy.npy")
    assert (work / "copy.npy").read_bytes() == data
    assert os.stat(work / "copy.npy").st_mode & 0o777 == 0o640


def test_memory_stays_flat(scene: Any, work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No more than about 2 × workers chunks are ever read and not yet written."""
    repo, _, trees = scene
    workers = 2
    repo._ctx.workers = workers
    store = repo._ctx.store
    chunks = {oid for e in repo.get("m:v2", files=True).files for oid, _ in e.chunks}
    lock = threading.Lock()
    held = [0, 0]  # now, most

    real_get: Callable[..., Any] = store.get
    real_pwrite = os.pwrite

    def get(oid: str, **kw: Any) -> Any:
        data = real_get(oid, **kw)
        if oid not in chunks:  # the manifest
            return data
        with lock:
            held[0] += 1
            held[1] = max(held)
        return data

    def pwrite(fd: int, data: Any, offset: int) -> int:
        n = real_pwrite(fd, data, offset)
        if n == len(data):
            with lock:
                held[0] -= 1
        return n

    monkeypatch.setattr(store, "get", get)
    monkeypatch.setattr(os, "pwrite", pwrite)
    repo.export("m:v2", work / "out")
    assert tree_bytes(work / "out") == trees["m:v2"]
    assert held[0] == 0
    assert 1 <= held[1] <= 2 * workers + 1


def test_open_files_stay_few(repo: amber.Repo, work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """However many files a version has, only about 2 × workers are open at once."""
    folder = work / "many"
    folder.mkdir()
    rng = np.random.default_rng(5)
    for i in range(60):
        (folder / f"f{i:02}.bin").write_bytes(rng.bytes(int(rng.integers(1, 50_000))))
    v = repo.snapshot(folder, model="many")
    workers = 2
    repo._ctx.workers = workers
    baseline = len(open_fds())
    most = [0]
    real_pwrite = os.pwrite

    def pwrite(fd: int, data: Any, offset: int) -> int:
        most[0] = max(most[0], len(open_fds()) - baseline)
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", pwrite)
    repo.export(v.ref, work / "out")
    assert tree_bytes(work / "out") == tree_bytes(folder)
    assert 1 <= most[0] <= 2 * workers + 2


def test_a_run_of_empty_files_keeps_few_files_open(repo: amber.Repo, work: Path) -> None:
    """Empty files have no chunk to wait on, but each still holds a descriptor until fsynced."""
    folder = work / "empties"
    folder.mkdir()
    for i in range(300):
        (folder / f"e{i:03}").write_bytes(b"")
    (folder / "zz-data.bin").write_bytes(np.random.default_rng(6).bytes(100_000))
    v = repo.snapshot(folder, model="empties")
    repo._ctx.workers = 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(open_fds()) + 40, hard))  # 300 at once would fail
    try:
        repo.export(v.ref, work / "out")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert tree_bytes(work / "out") == tree_bytes(folder)


def _count_writes(repo: amber.Repo, work: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    count = [0]
    real = faults.io_fault

    def counting(op: str) -> None:
        count[0] += op == "write"
        real(op)

    with monkeypatch.context() as m:
        m.setattr(faults, "io_fault", counting)
        repo.export("m:v2", work / "count")
    return count[0]


def test_a_write_error_anywhere_aborts_the_export_and_closes_every_file(
    scene: Any, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, _, trees = scene
    writes = _count_writes(repo, work, monkeypatch)
    assert writes >= 15  # one per chunk, over several files
    before = open_fds()
    for n in sorted({1, 2, writes // 3, writes // 2, writes - 1, writes}):
        monkeypatch.setattr(faults, "_counts", {})
        monkeypatch.setenv("AMBER_FAULT", f"write:EIO:{n}")
        with pytest.raises(StorageError) as info:
            repo.export("m:v2", work / "out")
        assert "Input/output error" in info.value.message, n
        assert not (work / "out").exists(), n
        assert leftovers(work) == [], n
        assert open_fds() == before, f"a descriptor leaked after a fault at write #{n}"
    monkeypatch.delenv("AMBER_FAULT")
    repo.export("m:v2", work / "out")
    assert tree_bytes(work / "out") == trees["m:v2"]
    assert open_fds() == before


def test_a_damaged_chunk_in_a_later_file_aborts_the_export(scene: Any, work: Path) -> None:
    repo, _, _ = scene
    entries = [e for e in repo.get("m:v1", files=True).files if e.type == "file"]
    last = max(entries, key=lambda e: len(e.chunks))
    oid = last.chunks[-1][0]
    path = object_path(Path(repo.root), oid)
    os.chmod(path, 0o644)
    damaged = bytearray(path.read_bytes())
    damaged[-1] ^= 0xFF
    path.write_bytes(bytes(damaged))
    before = open_fds()
    with pytest.raises(Corruption):
        repo.export("m:v1", work / "out")
    assert not (work / "out").exists()
    assert leftovers(work) == []
    assert open_fds() == before

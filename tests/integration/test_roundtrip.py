"""Snapshot → change → restore gives back the exact bytes, on real model files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from tests.conftest import tree_bytes

import amber


def write_model(folder: Path, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    folder.mkdir(exist_ok=True)
    layers = {f"layer{i}.weight": torch.randn(256, 128, generator=g) * 0.02 for i in range(4)}
    layers["emb"] = (torch.randn(512, 64, generator=g) * 0.02).to(torch.bfloat16)
    layers["head"] = (torch.randn(64, 64, generator=g)).to(torch.float16)
    save_file(layers, str(folder / "model.safetensors"))
    torch.save({"step": seed, "exp_avg": torch.randn(1000, generator=g)}, folder / "optimizer.pt")
    (folder / "config.json").write_text(f'{{"hidden": 128, "seed": {seed}}}')


def test_restore_gives_back_every_byte(repo: amber.Repo, work: Path) -> None:
    model = work / "model"
    write_model(model, 1)
    first = tree_bytes(model)
    v1 = repo.snapshot(model, name="first", iteration=100, metrics={"loss": 0.5})

    write_model(model, 2)
    (model / "extra.txt").write_text("not in v1")
    second = tree_bytes(model)
    assert first != second

    result = repo.restore(v1.ref)

    assert first == tree_bytes(model)
    assert result.backup is not None
    assert result.backup.kind == "backup"
    assert result.backup.label == "auto-backup before restoring model:v1"
    assert [v.ref for v in repo.versions()] == ["model:v2", "model:v1"]

    repo.restore(result.backup.ref)
    assert second == tree_bytes(model)


def test_restored_files_load_in_torch(repo: amber.Repo, work: Path) -> None:
    from safetensors.torch import load_file

    model = work / "model"
    write_model(model, 3)
    expected = load_file(str(model / "model.safetensors"))
    v = repo.snapshot(model)
    write_model(model, 4)
    repo.restore(v.ref)
    got = load_file(str(model / "model.safetensors"))
    assert sorted(expected) == sorted(got)
    for name in expected:
        assert torch.equal(expected[name], got[name])
    assert torch.load(model / "optimizer.pt")["step"] == 3


def test_edge_entries_round_trip(repo: amber.Repo, work: Path) -> None:
    model = work / "model"
    (model / "deep" / "er" / "est").mkdir(parents=True)
    (model / "empty").write_bytes(b"")
    (model / "deep" / "er" / "est" / "ünïcødé 名前.npy").write_bytes(np.arange(1000, dtype=np.float32).tobytes())
    run = model / "run.sh"
    run.write_text("#!/bin/sh\necho hi\n")
    run.chmod(0o755)
    os.symlink("deep/er/est/ünïcødé 名前.npy", model / "link-inside")
    (model / "emptydir").mkdir()
    before = tree_bytes(model)
    v = repo.snapshot(model)

    export = work / "out"
    repo.export(v.ref, export)
    assert before == tree_bytes(export)

    for p in (model / "empty", model / "run.sh"):
        p.unlink()
    (model / "new").write_text("x")
    repo.restore(v.ref)
    assert before == tree_bytes(model)


def test_single_file_model(repo: amber.Repo, work: Path) -> None:
    f = work / "weights.safetensors"
    save_file({"w": torch.randn(100, 100)}, str(f))
    original = f.read_bytes()
    v = repo.snapshot(f, model="single")
    assert v.file_count == 1
    save_file({"w": torch.zeros(3)}, str(f))
    repo.restore("single:v1")
    assert original == f.read_bytes()


def test_unchanged_files_are_not_read_again(repo: amber.Repo, work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from amber.ops import chunking

    model = work / "model"
    write_model(model, 5)
    time.sleep(0.2)  # older than the racily-clean window when first read
    repo.snapshot(model)
    os.utime(model / "config.json")  # touched: must be read again
    reads: list[str] = []
    real = chunking.ChunkWriter.read_file

    def spy(self: chunking.ChunkWriter, path: str, previous=()):  # type: ignore[no-untyped-def]
        reads.append(os.path.basename(path))
        return real(self, path, previous)

    monkeypatch.setattr(chunking.ChunkWriter, "read_file", spy)
    v = repo.snapshot(model)
    assert reads == ["config.json"]
    assert v.size_bytes == sum(p.stat().st_size for p in model.iterdir())


def test_equal_content_is_stored_once(repo: amber.Repo, work: Path) -> None:
    model = work / "model"
    write_model(model, 6)
    v1 = repo.snapshot(model)
    data = {p.name: (p.read_bytes(), p.stat().st_mode) for p in model.iterdir()}
    for name, (content, mode) in data.items():  # rewrite every file with the same bytes (new inode, new mtime)
        (model / name).unlink()
        (model / name).write_bytes(content)
        (model / name).chmod(mode)
    before = sum(f.stat().st_size for f in (work / ".amber" / "objects").rglob("*") if f.is_file())
    v2 = repo.snapshot(model)
    after = sum(f.stat().st_size for f in (work / ".amber" / "objects").rglob("*") if f.is_file())
    assert v1.manifest == v2.manifest
    assert before == after


def test_restore_links_files_that_did_not_change(repo: amber.Repo, work: Path) -> None:
    model = work / "model"
    write_model(model, 7)
    v1 = repo.snapshot(model)
    expected = tree_bytes(model)
    kept = (model / "model.safetensors").stat().st_ino
    torch.save({"step": 99}, model / "optimizer.pt")  # only the optimizer moved on
    repo.restore(v1.ref)
    assert expected == tree_bytes(model)
    assert (model / "model.safetensors").stat().st_ino == kept  # linked from the old tree, not rewritten
    assert repo.verify(data=True).ok

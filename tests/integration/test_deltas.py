"""How float pieces are coded across versions: which delta, when none is tried, and old catalogs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import tree_bytes

import amber
from amber.ops.chunking import BasePicker
from amber.store import codecs
from amber.store.objects import ObjectStore

N = 1 << 19  # 2 MiB of float32 per file: one piece each


def write(folder: Path, w: np.ndarray, m: np.ndarray) -> None:
    folder.mkdir(exist_ok=True)
    np.save(folder / "w.npy", w)  # weights: nudged at every save
    np.save(folder / "m.npy", m)  # a first moment: new numbers at every save


def chunk_of(repo: amber.Repo, ref: str, name: str) -> str:
    files = repo.get(ref, files=True).files or ()
    (entry,) = [f for f in files if f.path == name]
    return max(entry.chunks, key=lambda c: c[1])[0]  # the tensor's piece, not the .npy header


def rows(work: Path) -> dict[str, tuple[int, int]]:
    with sqlite3.connect(work / ".amber" / "catalog.db") as db:
        return {r[0]: (r[1], r[2]) for r in db.execute("SELECT id, codec, losses FROM chunks")}


def test_a_delta_that_keeps_losing_is_not_tried_again_for_a_while(
    repo: amber.Repo, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(0)
    w = (rng.standard_normal(N) * 0.02).astype(np.float32)
    read_as_base: list[str] = []
    real_get_whole = ObjectStore.get_whole

    def spy(self: ObjectStore, oid: str, **kw: bool) -> codecs.Buffer:
        read_as_base.append(oid)
        return real_get_whole(self, oid, **kw)

    monkeypatch.setattr(ObjectStore, "get_whole", spy)
    model = work / "model"
    seen = []
    for i in range(10):
        w = (w - 2e-5 * rng.standard_normal(N).astype(np.float32)).astype(np.float32)
        write(model, w, rng.standard_normal(N).astype(np.float32))
        read_as_base.clear()
        repo.snapshot(str(model), model="m", iteration=i)
        seen.append(tree_bytes(model))
        m_prev = chunk_of(repo, f"m:v{i}", "m.npy") if i else None
        tried_m = m_prev is not None and m_prev in read_as_base
        m_codec, m_losses = rows(work)[chunk_of(repo, f"m:v{i + 1}", "m.npy")]
        assert m_codec == codecs.GROUPED  # fresh noise never gains from a delta
        # v1 has nothing to try; v2 tries and loses; v3-v5 skip; v6 tries again; ...
        expected_tries = i in (1, 5, 9)
        assert tried_m == expected_tries, f"v{i + 1}"
        assert m_losses == (0 if i == 0 else i)
        w_codec, _ = rows(work)[chunk_of(repo, f"m:v{i + 1}", "w.npy")]
        keyframe = i % (BasePicker.KEYFRAME_EVERY + 1) == 0
        assert (w_codec == codecs.GROUPED) if keyframe else (w_codec in codecs.DELTAS), f"v{i + 1}"
    for i, expected in enumerate(seen):
        assert tree_bytes(Path(repo.export(f"m:v{i + 1}", work / f"out{i}"))) == expected


def test_a_catalog_from_before_sub_deltas_is_upgraded_and_keeps_its_versions(work: Path) -> None:
    rng = np.random.default_rng(1)
    model = work / "model"
    w = (rng.standard_normal(N) * 0.02).astype(np.float32)
    write(model, w, rng.standard_normal(N).astype(np.float32))
    with amber.Repo.init(work) as repo:
        repo.snapshot(str(model), model="m")
    before = tree_bytes(model)
    with sqlite3.connect(work / ".amber" / "catalog.db") as db:  # what schema 1 looked like
        db.execute("ALTER TABLE chunks DROP COLUMN losses")
        db.execute("PRAGMA user_version=1")
    write(model, (w + np.float32(1e-4)).astype(np.float32), rng.standard_normal(N).astype(np.float32))
    with amber.Repo(work) as repo:
        repo.snapshot(str(model), model="m")
        assert tree_bytes(Path(repo.export("m:v1", work / "v1"))) == before
        assert repo.verify(data=True).ok
    with sqlite3.connect(work / ".amber" / "catalog.db") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
        assert db.execute("SELECT count(*) FROM chunks WHERE losses > 0").fetchone()[0] == 1  # m.npy lost


def test_a_newer_catalog_is_refused_by_name(work: Path) -> None:
    amber.Repo.init(work).close()
    with sqlite3.connect(work / ".amber" / "catalog.db") as db:
        db.execute("PRAGMA user_version=99")
    with pytest.raises(amber.AmberError, match="newer than this Amber knows"):
        amber.Repo(work)


@pytest.mark.parametrize("damage", ["truncated", "decodes to other bytes"])
def test_a_damaged_base_is_named_when_a_delta_version_is_read(repo: amber.Repo, work: Path, damage: str) -> None:
    rng = np.random.default_rng(2)
    w = (rng.standard_normal(N) * 0.02).astype(np.float32)
    model = work / "model"
    write(model, w, w)
    repo.snapshot(str(model), model="m")
    write(model, (w + np.float32(1e-6)).astype(np.float32), w)
    repo.snapshot(str(model), model="m")
    delta = chunk_of(repo, "m:v2", "w.npy")
    base = chunk_of(repo, "m:v1", "w.npy")
    assert rows(work)[delta][0] in codecs.DELTAS
    path = work / ".amber" / "objects" / base[:2] / base
    path.chmod(0o644)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    else:  # a well-formed chunk of the right size holding other floats: only the hash can tell
        other = (rng.standard_normal(N) * 0.02).astype(np.float32).tobytes()
        path.write_bytes(b"".join(codecs.encode(other[: rows_raw(work, base)], 4)[1]))
    with pytest.raises(amber.AmberError, match=f"object {base[:16]} is damaged"):
        repo.export("m:v2", work / "out")
    assert not (work / "out").exists()


def rows_raw(work: Path, oid: str) -> int:
    with sqlite3.connect(work / ".amber" / "catalog.db") as db:
        return int(db.execute("SELECT raw_size FROM chunks WHERE id = ?", (oid,)).fetchone()[0])


def test_a_damaged_size_in_a_header_does_not_size_a_buffer(
    repo: amber.Repo, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(3)
    w = (rng.standard_normal(N) * 0.02).astype(np.float32)
    model = work / "model"
    write(model, w, w)
    repo.snapshot(str(model), model="m")
    oid = chunk_of(repo, "m:v1", "w.npy")
    path = work / ".amber" / "objects" / oid[:2] / oid
    path.chmod(0o644)
    blob = bytearray(path.read_bytes())
    blob[8:16] = ((1 << 30) - 1).to_bytes(8, "little")  # raw size: just under the 1 GiB sanity cap
    path.write_bytes(bytes(blob))
    asked: list[int] = []
    real = codecs.scratch

    def scratch(name: str, size: int) -> memoryview:
        asked.append(size)
        return real(name, size)

    monkeypatch.setattr(codecs, "scratch", scratch)
    with pytest.raises(amber.AmberError, match=f"object {oid[:16]} is damaged"):
        repo.export("m:v1", work / "out")
    assert asked and max(asked) <= codecs.SCRATCH_MAX

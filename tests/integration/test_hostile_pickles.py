"""Malicious pickles in a .npy, a .dat and a .pt: stored byte for byte, never executed."""

from __future__ import annotations

import zipfile
from pathlib import Path

import torch
from tests.conftest import cli_json, run_cli, tree_bytes
from tests.unit.formats.builders import hostile_pickle


def hostile_pt(path: Path, marker: Path) -> None:
    """A real torch checkpoint whose data.pkl is replaced by one that runs a command."""
    torch.save({"w": torch.ones(4)}, path)
    with zipfile.ZipFile(path) as src:
        members = [(i, src.read(i.filename)) for i in src.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as dst:
        for info, data in members:
            dst.writestr(info, hostile_pickle(marker, protocol=2) if info.filename.endswith("data.pkl") else data)


def test_hostile_pickles_never_run(work: Path) -> None:
    assert run_cli("init", cwd=work).returncode == 0
    marker = work / "pwned"
    model = work / "model"
    model.mkdir()
    (model / "weights.npy").write_bytes(hostile_pickle(marker))
    (model / "state.dat").write_bytes(hostile_pickle(marker))
    hostile_pt(model / "checkpoint.pt", marker)
    expected = tree_bytes(model)

    snap = run_cli("snapshot", "model", "--json", cwd=work)
    assert snap.returncode == 0, snap.stderr
    assert "checkpoint.pt' pickles posix.system" in snap.stderr
    assert not marker.exists()

    hostile_pt(model / "checkpoint.pt", marker)  # rewritten: a second version to diff against
    (model / "weights.npy").write_bytes(hostile_pickle(marker, protocol=2))
    assert run_cli("snapshot", "model", cwd=work).returncode == 0
    assert run_cli("show", "model:v1", cwd=work).returncode == 0
    diff = run_cli("diff", "model:v1", "model:v2", cwd=work)
    assert diff.returncode == 0, diff.stderr
    assert "weights.npy" in diff.stdout
    assert not marker.exists()

    assert run_cli("export", "model:v1", "out", cwd=work).returncode == 0
    assert expected == tree_bytes(work / "out")
    assert cli_json("verify", "--data", cwd=work)["ok"] is True
    assert not marker.exists()

"""amber diff: fields, files and tensors between two versions."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file
from tests.conftest import cli_json

import amber


def test_diff_down_to_the_tensor(repo: amber.Repo, work: Path) -> None:
    model = work / "model"
    model.mkdir()
    g = torch.Generator().manual_seed(0)
    w = {"a": torch.randn(300, 300, generator=g), "b": torch.ones(8).to(torch.bfloat16), "c": torch.ones(5)}
    save_file(w, str(model / "model.safetensors"))
    (model / "config.json").write_text("{}")
    repo.snapshot(model, metrics={"loss": 1.0}, iteration=10)
    w["a"] = w["a"] + 0.5
    w["b"] = torch.full((8,), 2.0).to(torch.bfloat16)
    del w["c"]
    w["d"] = torch.zeros(3, 3, dtype=torch.float16)
    save_file(w, str(model / "model.safetensors"))
    (model / "notes.txt").write_text("x")
    repo.snapshot(model, metrics={"loss": 0.5}, iteration=20)

    d = cli_json("diff", "model:v1", "model:v2", cwd=work)
    assert d["a"] == "model:v1" and d["b"] == "model:v2"
    assert d["fields"]["iteration"] == [10, 20]
    assert d["fields"]["metrics.loss"] == [1.0, 0.5]
    files = {f["path"]: f for f in d["files"]}
    assert sorted(files) == ["model.safetensors", "notes.txt"]
    assert files["notes.txt"]["status"] == "added"
    tensors = {t["name"]: t for t in files["model.safetensors"]["tensors"]}
    assert sorted(tensors) == ["a", "b", "c", "d"]
    assert tensors["a"]["status"] == "changed"
    assert abs(tensors["a"]["max_abs"] - 0.5) < 1e-6
    norm = float(torch.linalg.vector_norm(torch.randn(300, 300, generator=torch.Generator().manual_seed(0))))
    assert abs(tensors["a"]["rel_l2"] - 0.5 * 300 / norm) < 1e-6
    assert tensors["b"]["max_abs"] == 1.0 and tensors["b"]["rel_l2"] == 1.0
    assert (tensors["c"]["status"], tensors["c"]["shape"]) == ("removed", [[5], None])
    assert (tensors["d"]["status"], tensors["d"]["dtype"]) == ("added", [None, "float16"])
    assert cli_json("diff", "model:v2", "model:v2", cwd=work)["files"] == []

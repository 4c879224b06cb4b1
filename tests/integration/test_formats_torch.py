"""PyTorch checkpoints written by torch.save: storage regions, parameter counts, Lightning, hostile pickles."""

from __future__ import annotations

import sys
import types
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from tests.unit.formats.builders import hostile_pickle, replace_member

from amber.formats import Detected, Region, detect, plan_regions
from amber.formats.regions import SMALL, covers


def _raw(tensor: torch.Tensor) -> bytes:
    return tensor.contiguous().view(torch.uint8).numpy().tobytes()


def _plan(path: Path) -> list[Region]:
    regions = plan_regions(str(path), path.stat().st_size)
    assert covers(regions, path.stat().st_size)
    return regions


@pytest.fixture
def state() -> OrderedDict[str, torch.Tensor]:
    torch.manual_seed(0)
    emb = torch.randn(512, 64)
    return OrderedDict(
        [
            ("emb.weight", emb),
            ("head.weight", emb),  # tied: shares emb's storage
            ("proj.weight", torch.randn(256, 128).to(torch.bfloat16)),
            ("proj.bias", torch.zeros(128).half()),
            ("norm.weight", torch.ones(64)),
            ("pos_ids", torch.arange(20000)),
            ("big64", torch.randn(100, 100, dtype=torch.float64)),
        ]
    )


def test_each_storage_is_a_region_with_its_dtype(tmp_path: Path, state: OrderedDict[str, torch.Tensor]) -> None:
    path = tmp_path / "model.pt"
    torch.save(state, path)
    data = path.read_bytes()
    regions = _plan(path)
    for name, itemsize in (("emb.weight", 4), ("proj.weight", 2), ("pos_ids", 0), ("big64", 8)):
        raw = _raw(state[name])
        assert len(raw) >= SMALL
        assert Region(data.index(raw), len(raw), itemsize) in regions, name
    expected = {"parameters": 512 * 64 + 256 * 128 + 128 + 64 + 20000 + 10000, "dtype": "float32"}
    assert detect(str(path)) == Detected("torch", None, {}, expected)


def test_legacy_format_is_covered_and_typed(tmp_path: Path, state: OrderedDict[str, torch.Tensor]) -> None:
    path = tmp_path / "old.pt"
    torch.save(state, path, _use_new_zipfile_serialization=False)
    _plan(path)
    assert detect(str(path)) == Detected("torch")


@pytest.fixture
def lightning_module(monkeypatch: pytest.MonkeyPatch) -> type:
    name = "lightning.fabric.utilities.data"
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        monkeypatch.setitem(sys.modules, ".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
    attribute_dict = type("AttributeDict", (dict,), {"__module__": name})  # as Lightning pickles hparams
    monkeypatch.setattr(sys.modules[name], "AttributeDict", attribute_dict, raising=False)
    return attribute_dict


def _lightning_checkpoint(state: OrderedDict[str, torch.Tensor], attribute_dict: type, step: int) -> dict[str, object]:
    params = [torch.nn.Parameter(t.float().clone()) for t in list(state.values())[:3]]
    optimizer = torch.optim.Adam(params, lr=1e-3)
    sum(p.sum() for p in params).backward()  # type: ignore[union-attr]
    optimizer.step()
    monitor = "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min', 'every_n_train_steps': 0, 'every_n_epochs': 1}"
    return {
        "epoch": 3,
        "global_step": step,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": state,
        "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 4, "completed": 3}}}},
        "callbacks": {
            monitor: {
                "monitor": "val_loss",
                "best_model_score": torch.tensor(0.25),
                "current_score": torch.tensor(0.5),
                "best_model_path": "/runs/epoch=2-step=300.ckpt",
                "best_k_models": {"/runs/epoch=2-step=300.ckpt": torch.tensor(0.25)},
                "dirpath": "/runs",
            }
        },
        "optimizer_states": [optimizer.state_dict()],
        "lr_schedulers": [],
        "hparams_name": "kwargs",
        "hyper_parameters": attribute_dict(lr=1e-3, hidden=64),
    }


def test_lightning_checkpoint(tmp_path: Path, state: OrderedDict[str, torch.Tensor], lightning_module: type) -> None:
    torch.save(_lightning_checkpoint(state, lightning_module, 300), tmp_path / "epoch=2-step=300.ckpt")
    torch.save(_lightning_checkpoint(state, lightning_module, 400), tmp_path / "last.ckpt")
    expected = Detected(
        "lightning",
        400,
        {"val_loss": 0.5},
        {
            "lightning_version": "2.4.0",
            "epoch": 3,
            "parameters": 512 * 64 + 256 * 128 + 128 + 64 + 20000 + 10000,
            "dtype": "float32",
            "best_model_score": 0.25,
            "monitor": "val_loss",
            "checkpoint": "last.ckpt",
        },
    )
    assert detect(str(tmp_path)) == expected
    single = detect(str(tmp_path / "epoch=2-step=300.ckpt"))
    assert (single.model_type, single.iteration) == ("lightning", 300)
    _plan(tmp_path / "last.ckpt")


def test_lightning_checkpoint_with_custom_hparams_is_still_read(tmp_path: Path) -> None:
    checkpoint = {
        "pytorch-lightning_version": "2.4.0",
        "global_step": 12,
        "epoch": 0,
        "state_dict": {"w": torch.ones(3)},
        "hyper_parameters": {"config": types.SimpleNamespace(lr=1)},  # a class of the user's: not loaded
    }
    torch.save(checkpoint, tmp_path / "x.ckpt")
    expected = Detected(
        "lightning",
        12,
        {},
        {
            "lightning_version": "2.4.0",
            "epoch": 0,
            "parameters": 3,
            "dtype": "float32",
            "unsafe_pickles": {"x.ckpt": ["types.SimpleNamespace"]},
            "checkpoint": "x.ckpt",
        },
    )
    assert detect(str(tmp_path)) == expected


def test_hostile_checkpoint_never_runs_and_is_reported(tmp_path: Path, state: OrderedDict[str, torch.Tensor]) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "pytorch_model.bin"
    torch.save(state, path)
    replace_member(path, "/data.pkl", hostile_pickle(marker, protocol=2))
    regions = _plan(path)
    raw = _raw(state["emb.weight"])
    assert Region(path.read_bytes().index(raw), len(raw), 0) in regions  # located; its dtype is unknown
    expected = Detected("torch", None, {}, {"unsafe_pickles": {"pytorch_model.bin": ["posix.system"]}})
    assert detect(str(path)) == expected
    assert detect(str(tmp_path)) == expected
    assert not marker.exists()


def test_pickled_module_is_reported_not_loaded(tmp_path: Path) -> None:
    path = tmp_path / "whole.pt"
    torch.save(torch.nn.Linear(4, 2), path)
    found = detect(str(path))
    assert found.model_type == "torch"
    assert "torch.nn.modules.linear.Linear" in found.metadata["unsafe_pickles"]["whole.pt"]


def test_hostile_checkpoint_is_live_for_torch(tmp_path: Path, state: OrderedDict[str, torch.Tensor]) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "model.pt"
    torch.save(state, path)
    replace_member(path, "/data.pkl", hostile_pickle(marker, protocol=2))
    torch.load(path, weights_only=False)  # what Amber must never do
    assert marker.exists()

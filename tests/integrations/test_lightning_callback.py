"""The Lightning callback: every checkpoint file becomes a version, and monitor/mode drive best."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning  # noqa: F401  (installed by scripts/install)
import pytest
import torch

import amber
from amber.integrations.lightning import AmberCallback, SnapshotIO
from tests.integrations.conftest import load_example

tiny = load_example("lightning_tiny")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:lightning.*"),  # Lightning on torch's newer pytree
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, Any, AmberCallback]:
    workdir = tmp_path_factory.mktemp("lightning")
    amber.Repo.init(workdir)
    trainer, module, callback = tiny.train(str(workdir), epochs=4)
    return workdir, trainer, module, callback


def test_each_checkpoint_file_becomes_one_version(run: tuple[Path, Any, Any, AmberCallback]) -> None:
    workdir, trainer, _, callback = run
    with amber.Repo(workdir) as repo:
        versions = list(reversed(repo.versions("tiny")))
    assert [v.iteration for v in versions] == [3, 6, 9, 12]  # last.ckpt at the same step is not a second version
    assert [v.kind for v in versions] == ["callback"] * 4
    names = [f"epoch={e}-step={s}.ckpt" for e, s in ((0, 3), (1, 6), (2, 9), (3, 12))]
    assert names == [v.metadata["checkpoint"] for v in versions]
    assert [v.metadata["epoch"] for v in versions] == [0, 1, 2, 3]
    assert [(v.metadata["hidden"], v.metadata["lr"], v.metadata["monitor"]) for v in versions] == [
        (16, 0.05, "val_loss")
    ] * 4
    assert [v.file_count for v in versions] == [1] * 4
    assert 4 == len(callback.pauses) == len(callback.versions)
    assert isinstance(trainer.strategy.checkpoint_io, SnapshotIO)


def test_metrics_are_the_callback_metrics_the_checkpoint_was_saved_with(
    run: tuple[Path, Any, Any, AmberCallback],
) -> None:
    workdir, _, _, _ = run
    with amber.Repo(workdir) as repo:
        for v in repo.versions("tiny"):
            ckpt = torch.load(amber.path(v.ref, repo=str(workdir)), weights_only=True)
            state = next(s for k, s in ckpt["callbacks"].items() if k.startswith("ModelCheckpoint"))
            assert float(state["current_score"]) == v.metrics["val_loss"]
            assert {"train_loss", "val_loss"} == set(v.metrics)


def test_monitor_min_makes_best_the_lowest_val_loss(run: tuple[Path, Any, Any, AmberCallback]) -> None:
    workdir, _, module, _ = run
    with amber.Repo(workdir) as repo:
        settings = repo.model_settings("tiny")
        versions = repo.versions("tiny")
        best = repo.get("tiny:best")
    assert (settings.best_metric, settings.mode) == ("val_loss", "min")
    assert min(versions, key=lambda v: v.metrics["val_loss"]).id == best.id
    loaded = tiny.Tiny.load_from_checkpoint(amber.path("tiny:best", repo=str(workdir)))
    if best.iteration == 12:  # the final weights: equal to the module in memory
        assert all(
            torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), module.state_dict().values(), strict=True)
        )
    assert loaded.hparams.hidden == 16


def test_monitor_max_makes_best_the_highest(tmp_path: Path) -> None:
    amber.Repo.init(tmp_path)
    trainer, _, callback = tiny.train(str(tmp_path), epochs=3)  # the example's callback: val_loss, min
    with amber.Repo(tmp_path) as repo:
        repo.set_model("tiny", mode="max")
        highest = max(repo.versions("tiny"), key=lambda v: v.metrics["val_loss"])
        assert highest.id == repo.get("tiny:best").id
    second = AmberCallback("tiny2", monitor="val_loss", mode="max", repo=str(tmp_path))
    second.setup(trainer, trainer.lightning_module, "fit")
    trainer.save_checkpoint(tmp_path / "manual.ckpt")
    with amber.Repo(tmp_path) as repo:
        settings = repo.model_settings("tiny2")
        assert (settings.best_metric, settings.mode) == ("val_loss", "max")
        assert [(v.iteration, v.metadata["checkpoint"]) for v in repo.versions("tiny2")] == [(9, "manual.ckpt")]
    assert len(callback.versions) == 3


def test_a_bad_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="mode must be 'min' or 'max', not 'lowest'"):
        AmberCallback("m", monitor="val_loss", mode="lowest")


def test_background_snapshots_wait_before_lightning_touches_a_checkpoint(tmp_path: Path) -> None:
    amber.Repo.init(tmp_path)
    _, _, callback = tiny.train(str(tmp_path), epochs=3, background=True)
    with amber.Repo(tmp_path) as repo:
        versions = list(reversed(repo.versions("tiny")))
        assert [v.iteration for v in versions] == [3, 6, 9]
        for v in versions:
            ckpt = torch.load(amber.path(v.ref, repo=str(tmp_path)), weights_only=True)
            assert ckpt["global_step"] == v.iteration
        assert repo.verify(data=True).ok
    assert (len(callback.pauses), len(callback.recorder.seconds)) == (3, 3)

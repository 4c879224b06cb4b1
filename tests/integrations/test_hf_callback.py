"""The Hugging Face callback: a tiny GPT-2 with a LoRA adapter under TRL's SFTTrainer, and plain Trainer runs."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import peft
import pytest
import torch
import transformers
import trl  # noqa: F401

import amber
from amber.integrations.transformers import AmberCallback, latest_metrics, lora_metadata
from tests.integrations.conftest import EXAMPLES, env, load_example, tree_digest

sft = load_example("hf_lora_sft")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, AmberCallback]:
    """Four SFT steps saving at 2 and 4, snapshotted into a fresh repository."""
    workdir = tmp_path_factory.mktemp("sft")
    amber.Repo.init(workdir)
    trainer, callback = sft.train(str(workdir), steps=4, save_steps=2)
    return workdir, trainer, callback


def _logged(trainer: Any, step: int) -> dict[str, float]:
    return next(e for e in trainer.state.log_history if e.get("step") == step and "loss" in e)


def test_each_save_becomes_a_callback_version(lora_run: tuple[Path, Any, AmberCallback]) -> None:
    workdir, _, callback = lora_run
    with amber.Repo(workdir) as repo:
        versions = list(reversed(repo.versions("gpt2-lora")))
    assert [v.ref for v in versions] == ["gpt2-lora:v1", "gpt2-lora:v2"]
    assert [v.kind for v in versions] == ["callback", "callback"]
    assert [v.iteration for v in versions] == [2, 4]
    assert [v.label for v in versions] == ["step 2", "step 4"]
    assert [v.model_type for v in versions] == ["peft-lora", "peft-lora"]
    assert [v.id for v in versions] == [v.id for v in callback.versions]


def test_metrics_are_the_logged_loss_and_learning_rate(lora_run: tuple[Path, Any, AmberCallback]) -> None:
    workdir, trainer, _ = lora_run
    with amber.Repo(workdir) as repo:
        for ref, step in (("gpt2-lora:v1", 2), ("gpt2-lora:v2", 4)):
            logged = _logged(trainer, step)
            metrics = repo.get(ref).metrics
            assert logged["loss"] == metrics["loss"]
            assert logged["learning_rate"] == metrics["learning_rate"]


def test_metadata_holds_the_training_arguments_and_the_lora_config(lora_run: tuple[Path, Any, AmberCallback]) -> None:
    workdir, _, _ = lora_run
    with amber.Repo(workdir) as repo:
        meta = repo.get("gpt2-lora:v2").metadata
    assert meta["r"] == 4
    assert meta["lora_alpha"] == 8
    assert meta["lora_dropout"] == 0.0
    assert meta["target_modules"] == ["c_attn"]
    assert meta["peft_type"] == "LORA"
    assert meta["learning_rate"] == 1e-3
    assert meta["per_device_train_batch_size"] == 4
    assert meta["gradient_accumulation_steps"] == 1
    assert meta["seed"] == 0
    assert meta["max_steps"] == 4
    assert meta["epoch"] == 0.5


def test_latest_loads_with_from_pretrained_and_gives_the_trained_logits(
    lora_run: tuple[Path, Any, AmberCallback],
) -> None:
    workdir, trainer, _ = lora_run
    loaded = peft.PeftModel.from_pretrained(sft.base_model(), amber.path("gpt2-lora:latest", repo=str(workdir)))
    with torch.no_grad():
        expected = trainer.model.eval()(sft.probe()).logits
        actual = loaded.eval()(sft.probe()).logits
    assert torch.allclose(expected, actual, rtol=0, atol=0)


def test_each_version_holds_the_checkpoint_folder_byte_for_byte(lora_run: tuple[Path, Any, AmberCallback]) -> None:
    workdir, _, _ = lora_run
    with amber.Repo(workdir) as repo:
        for ref, step in (("gpt2-lora:v1", 2), ("gpt2-lora:v2", 4)):
            out = workdir / "export" / ref.replace(":", "-")
            out.parent.mkdir(exist_ok=True)
            repo.export(ref, out)
            assert tree_digest(workdir / "out" / f"checkpoint-{step}") == tree_digest(out)


def test_the_pause_of_each_save_is_measured(lora_run: tuple[Path, Any, AmberCallback]) -> None:
    _, _, callback = lora_run
    assert len(callback.pauses) == 2
    assert all(0 < p < 30 for p in callback.pauses)


class _Tokens(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    def __init__(self, n: int) -> None:
        g = torch.Generator().manual_seed(n)
        self.rows = torch.randint(2, sft.VOCAB, (n, 16), generator=g)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.rows[i], "labels": self.rows[i]}


def _trainer(workdir: Path, callback: AmberCallback, **args: Any) -> Any:
    transformers.logging.set_verbosity_error()
    options: dict[str, Any] = {
        "output_dir": str(workdir / "out"),
        "per_device_train_batch_size": 4,
        "logging_steps": 1,
        "learning_rate": 5e-3,
        "report_to": [],
        "use_cpu": True,
        "disable_tqdm": True,
        "seed": 0,
    }
    training = transformers.TrainingArguments(**(options | args))
    return transformers.Trainer(
        model=sft.base_model(), args=training, train_dataset=_Tokens(16), eval_dataset=_Tokens(8), callbacks=[callback]
    )


def test_metric_for_best_model_makes_best_follow_the_eval_metric(tmp_path: Path) -> None:
    amber.Repo.init(tmp_path)
    callback = AmberCallback(model="gpt2", repo=str(tmp_path), retention="keep-best=2")
    trainer = _trainer(
        tmp_path,
        callback,
        max_steps=4,
        eval_strategy="steps",
        eval_steps=1,
        save_steps=1,
        metric_for_best_model="loss",
        greater_is_better=False,
    )
    trainer.train()
    evals = {e["step"]: e["eval_loss"] for e in trainer.state.log_history if "eval_loss" in e}
    with amber.Repo(tmp_path) as repo:
        settings = repo.model_settings("gpt2")
        assert (settings.best_metric, settings.mode, settings.retention) == (
            "eval_loss",
            "min",
            "keep-best=2,keep-aliased",
        )
        versions = repo.versions("gpt2")
        best = repo.get("gpt2:best")
    assert {v.iteration: v.metrics["eval_loss"] for v in versions} == {
        s: evals[s] for s in evals if s in {v.iteration for v in versions}
    }
    assert min(evals, key=lambda s: (evals[s], -s)) == best.iteration
    kept = sorted(evals, key=lambda s: (evals[s], -s))[:2]
    assert sorted({*kept, 4}) == sorted(v.iteration for v in versions)  # the 2 best, and latest
    assert versions[0].model_type == "hf-transformers"
    assert "r" not in versions[0].metadata


def test_on_epoch_saves_and_snapshots_at_each_epoch_end(tmp_path: Path) -> None:
    amber.Repo.init(tmp_path)
    callback = AmberCallback(
        model="gpt2",
        repo=str(tmp_path),
        every_save=False,
        on_epoch=True,
        name_template="epoch {epoch:.0f}",
        tags=["nightly"],
    )
    _trainer(tmp_path, callback, num_train_epochs=2, save_strategy="no").train()
    with amber.Repo(tmp_path) as repo:
        versions = list(reversed(repo.versions("gpt2")))
    assert [(v.iteration, v.label, v.tags) for v in versions] == [
        (4, "epoch 1", ["nightly"]),
        (8, "epoch 2", ["nightly"]),
    ]


def _state(**fields: Any) -> Any:
    state = transformers.TrainerState()
    for key, value in fields.items():
        setattr(state, key, value)
    return state


def test_only_the_main_process_snapshots(tmp_path: Path) -> None:
    amber.Repo.init(tmp_path)
    (tmp_path / "out" / "checkpoint-3").mkdir(parents=True)
    (tmp_path / "out" / "checkpoint-3" / "weights.bin").write_bytes(b"w" * 64)
    callback = AmberCallback(model="m", repo=str(tmp_path))
    args = transformers.TrainingArguments(output_dir=str(tmp_path / "out"), report_to=[], use_cpu=True)
    control = transformers.TrainerControl()
    callback.on_save(args, _state(global_step=3, is_world_process_zero=False), control)
    with amber.Repo(tmp_path) as repo:
        assert repo.models() == []
    callback.on_save(args, _state(global_step=3, is_world_process_zero=True), control)
    with amber.Repo(tmp_path) as repo:
        assert [v.iteration for v in repo.versions("m")] == [3]


def test_a_refused_snapshot_is_logged_and_training_goes_on(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "out" / "checkpoint-1").mkdir(parents=True)
    callback = AmberCallback(model="m", repo=str(tmp_path / "no-repo-here"))
    args = transformers.TrainingArguments(output_dir=str(tmp_path / "out"), report_to=[], use_cpu=True)
    with caplog.at_level(logging.ERROR, logger="amber.integrations"):
        callback.on_save(args, _state(global_step=1), transformers.TrainerControl())
    assert callback.versions == []
    assert [type(e).__name__ for e in callback.recorder.errors] == ["RepoNotFound"]
    assert f"could not snapshot '{tmp_path / 'out' / 'checkpoint-1'}' as a version of m" in caplog.text
    assert len(callback.pauses) == 1


def test_a_missing_checkpoint_folder_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    amber.Repo.init(tmp_path)
    callback = AmberCallback(model="m", repo=str(tmp_path))
    args = transformers.TrainingArguments(output_dir=str(tmp_path / "out"), report_to=[], use_cpu=True)
    with caplog.at_level(logging.WARNING, logger="amber.integrations"):
        callback.on_save(args, _state(global_step=7), transformers.TrainerControl())
    assert f"no checkpoint-7 folder under '{tmp_path / 'out'}'" in caplog.text
    with amber.Repo(tmp_path) as repo:
        assert repo.models() == []


def test_latest_metrics_keep_the_newest_value_of_each_number() -> None:
    history = [
        {"loss": 2.0, "learning_rate": 1e-3, "grad_norm": 1.0, "step": 1},
        {"eval_loss": 1.5, "eval_runtime": 0.2, "eval_name": "x", "step": 1},
        {"loss": 1.0, "learning_rate": 5e-4, "step": 2},
        {"loss": float("nan"), "step": 3},
    ]
    assert latest_metrics(history) == {"loss": 1.0, "learning_rate": 5e-4, "eval_loss": 1.5, "eval_runtime": 0.2}


def test_lora_metadata_reads_the_active_adapter() -> None:
    model = peft.get_peft_model(sft.base_model(), sft.lora_config())
    expected = {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "peft_type": "LORA", "target_modules": ["c_attn"]}
    assert expected == lora_metadata(model)
    assert lora_metadata(sft.base_model()) == {}
    assert lora_metadata(None) == {}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_killing_training_leaves_every_earlier_version_intact(tmp_path: Path, sig: signal.Signals) -> None:
    amber.Repo.init(tmp_path)
    argv = [sys.executable, str(EXAMPLES / "hf_lora_sft.py"), str(tmp_path), "--steps", "100000", "--save-steps", "2"]
    log = tmp_path / "training.log"
    with log.open("wb") as out:
        child = subprocess.Popen(argv, env=env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:
            with amber.Repo(tmp_path) as repo:
                if repo.models() and repo.versions("gpt2-lora"):
                    break
            time.sleep(0.05)
        assert child.poll() is None, log.read_text()
        child.send_signal(sig)
        child.wait(timeout=60)
    finally:
        child.kill()
        child.wait()
    assert child.returncode != 0
    with amber.Repo(tmp_path) as repo:
        report = repo.verify(data=True)
        assert (report.ok, report.problems) == (True, [])
        first = repo.get("gpt2-lora:v1")
        assert (first.iteration, first.kind) == (2, "callback")
        repo.export("gpt2-lora:v1", tmp_path / "v1")
        assert tree_digest(tmp_path / "out" / "checkpoint-2") == tree_digest(tmp_path / "v1")


def test_background_snapshots_make_the_same_versions_while_training_goes_on(tmp_path: Path) -> None:
    amber.Repo.init(tmp_path)
    trainer, callback = sft.train(str(tmp_path), steps=4, save_steps=1, background=True)
    with amber.Repo(tmp_path) as repo:
        versions = list(reversed(repo.versions("gpt2-lora")))
        assert [v.iteration for v in versions] == [1, 2, 3, 4]
        for v in versions:
            repo.export(v.ref, tmp_path / f"v{v.number}")
            assert tree_digest(tmp_path / f"v{v.number}") == tree_digest(tmp_path / "out" / f"checkpoint-{v.iteration}")
            assert v.metrics["loss"] == _logged(trainer, v.iteration)["loss"]
    assert (len(callback.pauses), len(callback.recorder.seconds)) == (4, 4)
    assert callback.recorder._pending is None and callback.recorder._pool is None  # closed at the end of training


def test_background_snapshots_finish_before_the_trainer_rotates_checkpoints_out(tmp_path: Path) -> None:
    amber.Repo.init(tmp_path)
    callback = AmberCallback(model="gpt2", repo=str(tmp_path), background=True)
    _trainer(tmp_path, callback, max_steps=4, save_steps=1, save_total_limit=1).train()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["checkpoint-4"]
    assert callback.recorder.errors == []
    with amber.Repo(tmp_path) as repo:
        assert [v.iteration for v in reversed(repo.versions("gpt2"))] == [1, 2, 3, 4]
        assert repo.verify(data=True).ok

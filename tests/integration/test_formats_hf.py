"""Hugging Face folders made by transformers and PEFT: tiny GPT-2, a Trainer run, a LoRA adapter."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import peft
import pytest
import torch
import transformers

from amber.formats import Detected, Region, detect, plan_regions
from amber.formats.regions import SMALL, covers


def _tiny() -> transformers.GPT2LMHeadModel:
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        n_layer=2, n_embd=64, n_head=2, vocab_size=128, n_positions=64, bos_token_id=0, eos_token_id=0
    )
    return transformers.GPT2LMHeadModel(config)


def _plan(path: Path) -> list[Region]:
    regions = plan_regions(str(path), path.stat().st_size)
    assert covers(regions, path.stat().st_size)
    return regions


def _model_metadata(model: transformers.PreTrainedModel) -> dict[str, object]:
    return {
        "architectures": ["GPT2LMHeadModel"],
        "hf_model_type": "gpt2",
        "transformers_version": transformers.__version__,
        "dtype": "float32",
        "parameters": model.num_parameters(),
    }


def test_saved_model_is_detected_and_cut_per_tensor(tmp_path: Path) -> None:
    model = _tiny()
    model.save_pretrained(tmp_path)
    assert detect(str(tmp_path)) == Detected("hf-transformers", None, {}, _model_metadata(model))
    path = tmp_path / "model.safetensors"
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    regions = _plan(path)
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    large = {k: v for k, v in tensors.items() if v["data_offsets"][1] - v["data_offsets"][0] >= SMALL}
    assert "transformer.h.0.mlp.c_fc.weight" in large
    for entry in large.values():
        begin, end = entry["data_offsets"]
        assert Region(8 + n + begin, end - begin, 4) in regions


def test_sharded_model_counts_every_shard(tmp_path: Path) -> None:
    model = _tiny()
    model.save_pretrained(tmp_path, max_shard_size="100KB")
    assert (tmp_path / "model.safetensors.index.json").exists()
    assert len(list(tmp_path.glob("model-*.safetensors"))) > 1
    assert detect(str(tmp_path)) == Detected("hf-transformers", None, {}, _model_metadata(model))


def test_pytorch_model_bin_is_counted_once_per_storage(tmp_path: Path) -> None:
    model = _tiny()
    model.config.architectures = ["GPT2LMHeadModel"]  # save_pretrained sets this; config alone does not
    model.config.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")  # as transformers 4 wrote it: tied weights shared
    assert detect(str(tmp_path)) == Detected("hf-transformers", None, {}, _model_metadata(model))
    _plan(tmp_path / "pytorch_model.bin")


class _Tokens(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    def __len__(self) -> int:
        return 16

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ids = (torch.arange(16) * (i + 1)) % 128
        return {"input_ids": ids, "labels": ids}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    args = transformers.TrainingArguments(
        output_dir=str(out), max_steps=4, save_steps=2, logging_steps=1, eval_strategy="steps", eval_steps=2,
        per_device_train_batch_size=4, per_device_eval_batch_size=8, learning_rate=1e-3, report_to=[],
        use_cpu=True, disable_tqdm=True, seed=0,
    )  # fmt: skip
    trainer = transformers.Trainer(model=_tiny(), args=args, train_dataset=_Tokens(), eval_dataset=_Tokens())
    trainer.train()
    return out


def _expected_from_log(state: dict[str, object]) -> dict[str, float]:
    log = state["log_history"]
    assert isinstance(log, list)
    train = [e for e in log if "loss" in e][-1]
    evaluation = [e for e in log if "eval_loss" in e][-1]
    assert (train["step"], evaluation["step"]) == (4, 4)
    evals = {k: float(v) for k, v in evaluation.items() if k.startswith("eval_")}
    return {"loss": train["loss"], "learning_rate": train["learning_rate"], **evals}


def test_trainer_checkpoint_gives_step_losses_and_evals(trained: Path) -> None:
    checkpoint = trained / "checkpoint-4"
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    found = detect(str(checkpoint))
    assert found.model_type == "hf-transformers"
    assert found.iteration == 4
    assert found.metrics == _expected_from_log(state)
    assert set(found.metrics) == {
        "loss", "learning_rate", "eval_loss", "eval_runtime", "eval_samples_per_second", "eval_steps_per_second",
    }  # fmt: skip
    assert found.metadata["epoch"] == state["epoch"]
    assert found.metadata["parameters"] == _tiny().num_parameters()
    assert "best_metric" not in found.metadata


def test_trainer_output_folder_is_described_by_its_newest_checkpoint(trained: Path) -> None:
    found = detect(str(trained))
    assert (found.iteration, found.metadata["checkpoint"]) == (4, "checkpoint-4")
    assert found.metadata["checkpoints"] == ["checkpoint-2", "checkpoint-4"]
    assert detect(str(trained / "checkpoint-2")).iteration == 2


def test_optimizer_state_is_cut_per_storage(trained: Path) -> None:
    regions = _plan(trained / "checkpoint-4" / "optimizer.pt")
    assert any(r.itemsize == 4 and r.length >= SMALL for r in regions)


def test_best_metric_goes_to_metadata(tmp_path: Path) -> None:
    state = {"global_step": 10, "best_metric": 0.5, "best_model_checkpoint": "out/checkpoint-5", "epoch": 2.0,
             "log_history": [{"loss": 1.0, "step": 5}, {"eval_loss": 0.5, "eval_accuracy": 0.9, "step": 5},
                             {"loss": 0.75, "learning_rate": 1e-4, "step": 10}]}  # fmt: skip
    (tmp_path / "trainer_state.json").write_text(json.dumps(state))
    expected = Detected(
        "hf-transformers",
        10,
        {"loss": 0.75, "learning_rate": 1e-4, "eval_loss": 0.5, "eval_accuracy": 0.9},
        {"epoch": 2.0, "best_metric": 0.5, "best_model_checkpoint": "out/checkpoint-5"},
    )
    assert detect(str(tmp_path)) == expected


def test_lora_adapter(tmp_path: Path) -> None:
    config = peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["c_attn"], fan_in_fan_out=True)
    model = peft.get_peft_model(_tiny(), config)
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "adapter_config.json").read_text())
    expected = {
        "peft_type": "LORA",
        "r": 4,
        "lora_alpha": 8,
        "lora_dropout": 0.0,
        "target_modules": ["c_attn"],
        "bias": "none",
        "parameters": 2 * (4 * 64 + 192 * 4),
        "dtype": "float32",
        **{k: saved[k] for k in ("task_type", "peft_version") if isinstance(saved.get(k), str)},
    }
    assert model.get_nb_trainable_parameters()[0] == expected["parameters"]
    assert detect(str(tmp_path)) == Detected("peft-lora", None, {}, expected)
    _plan(tmp_path / "adapter_model.safetensors")

"""How long AmberCallback keeps training waiting at each save, against the save itself.

    .venv/bin/python benchmarks/integrations_pause.py [--saves 6] [--save-every 5] [--repeat 3] [--work DIR]

Trains GPT-2 models built from configs (nothing downloaded) with the Hugging Face
Trainer, saving a checkpoint every few steps, with ``AmberCallback`` snapshotting
each one. Per save it times ``trainer.save_model`` (the weights), the whole
checkpoint (``_save_checkpoint``: weights, optimizer, scheduler, RNG, trainer
state) and the callback's pause (its ``pauses``: opening the repository,
snapshotting the checkpoint folder, committing the version). The first save of
a run stores every chunk; later ones reuse unchanged chunks and delta-code the
changed tensors against the previous version. Runs: the tiny GPT-2 of the tests
(2 layers, 64 wide), the same with a LoRA adapter (r=4 on c_attn), and a
larger one (4 layers, 256 wide) to show how the pause grows with the model;
each run --repeat times (interleaved), with the snapshot inline and with ``background=True`` (the
pause is then the time training waited for the snapshot, at the next save or
at the end of training). The machine's load average is printed: other work on
the machine slows everything down.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import torch
import transformers

import amber
from amber.integrations.transformers import AmberCallback

SIZES = {"tiny": (2, 64), "small": (4, 256)}


class _Tokens(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    def __init__(self, n: int, vocab: int) -> None:
        self.rows = torch.randint(2, vocab, (n, 32), generator=torch.Generator().manual_seed(0))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.rows[i], "labels": self.rows[i]}


def _timed(fn: Callable[..., Any], into: list[float]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            into.append(time.perf_counter() - start)

    return wrapper


class _Steps(transformers.TrainerCallback):
    def __init__(self) -> None:
        self.times: list[float] = []
        self._start = 0.0

    def on_step_begin(self, *args: Any, **kwargs: Any) -> None:
        self._start = time.perf_counter()

    def on_step_end(self, *args: Any, **kwargs: Any) -> None:
        self.times.append(time.perf_counter() - self._start)


def run(name: str, size: str, lora: bool, background: bool, saves: int, every: int, work: str) -> dict[str, Any]:
    workdir = os.path.join(work, name + ("-bg" if background else ""))
    os.makedirs(workdir, exist_ok=True)
    amber.Repo.init(workdir)
    layers, width = SIZES[size]
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        n_layer=layers,
        n_embd=width,
        n_head=4 if width >= 256 else 2,
        vocab_size=512,
        n_positions=64,
        bos_token_id=0,
        eos_token_id=0,
    )
    model: Any = transformers.GPT2LMHeadModel(config)
    if lora:
        import peft

        lora_config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn"], fan_in_fan_out=True)
        model = peft.get_peft_model(model, lora_config)
    callback, steps = AmberCallback(model=name, repo=workdir, background=background), _Steps()
    args = transformers.TrainingArguments(
        output_dir=os.path.join(workdir, "out"),
        max_steps=saves * every,
        save_steps=every,
        logging_steps=1,
        per_device_train_batch_size=4,
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    trainer = transformers.Trainer(model=model, args=args, train_dataset=_Tokens(256, 512), callbacks=[callback, steps])
    save_model: list[float] = []
    checkpoint: list[float] = []
    trainer.save_model = _timed(trainer.save_model, save_model)  # type: ignore[method-assign]
    trainer._save_checkpoint = _timed(trainer._save_checkpoint, checkpoint)  # type: ignore[method-assign]
    trainer.train()
    with amber.Repo(workdir) as repo:
        versions = list(reversed(repo.versions(name)))
    return {
        "run": name,
        "mode": "background" if background else "inline",
        "parameters": sum(p.numel() for p in model.parameters()),
        "checkpoint_bytes": versions[-1].size_bytes,
        "step_s": statistics.median(steps.times),
        "save_model_s": save_model,
        "checkpoint_s": checkpoint,
        "pause_s": list(callback.pauses),
        "snapshot_s": list(callback.recorder.seconds),
        "stored_bytes_first": versions[0].stored_bytes,
        "unique_bytes_later": statistics.median(v.unique_bytes for v in versions[1:]) if len(versions) > 1 else 0,
    }


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f}"


def _pooled(runs: list[dict[str, Any]], key: str) -> list[float]:
    """Every save but each run's first, pooled over the repeats."""
    return [x for r in runs for x in r[key][1:]]


def table(results: list[dict[str, Any]]) -> str:
    """One row per run and mode: medians pooled over every repeat."""
    head = (
        "| run | snapshot | parameters | checkpoint | train step (ms) | save_model (ms) | whole checkpoint save (ms) "
        "| pause, first save (ms) | pause, later saves (ms) | snapshot itself, later saves (ms) "
        "| pause / checkpoint save |\n"
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    rows = []
    for key in dict.fromkeys((r["run"], r["mode"]) for r in results):
        runs = [r for r in results if (r["run"], r["mode"]) == key]
        first, pause = [r["pause_s"][0] for r in runs], _pooled(runs, "pause_s")
        ratio = statistics.median(pause) / statistics.median(_pooled(runs, "checkpoint_s"))
        rows.append(
            f"| {key[0]} | {key[1]} | {runs[0]['parameters']:,} | {runs[0]['checkpoint_bytes'] / 1e6:.2f} MB "
            f"| {_ms([r['step_s'] for r in runs])} | {_ms(_pooled(runs, 'save_model_s'))} "
            f"| {_ms(_pooled(runs, 'checkpoint_s'))} | {_ms(first)} | {_ms(pause)} "
            f"| {_ms(_pooled(runs, 'snapshot_s'))} | {ratio:.2f}× |"
        )
    return "\n".join([head, *rows])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=6)
    parser.add_argument("--save-every", type=int, default=5, help="steps between saves")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each configuration, interleaved")
    parser.add_argument("--work", default=None)
    opts = parser.parse_args(argv)
    transformers.logging.set_verbosity_error()
    work = opts.work or tempfile.mkdtemp(prefix="amber-pause-")
    runs = [("gpt2-tiny", "tiny", False), ("gpt2-tiny-lora", "tiny", True), ("gpt2-small", "small", False)]
    load = os.getloadavg()
    results = [
        run(n, size, lora, bg, opts.saves, opts.save_every, os.path.join(work, f"r{rep}"))
        for rep in range(opts.repeat)
        for n, size, lora in runs
        for bg in (False, True)
    ]
    load = tuple(max(a, b) for a, b in zip(load, os.getloadavg(), strict=True))
    print(
        f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, transformers "
        f"{transformers.__version__}; {opts.saves} saves per run, one every {opts.save_every} steps; "
        f"{opts.repeat} runs each; medians over saves 2..N of every run; 1-minute load average up to {load[0]:.1f}"
    )
    print(table(results))
    with open(os.path.join(work, "results.json"), "w") as fh:
        json.dump(results, fh, indent=2)
    print(f"raw figures: {os.path.join(work, 'results.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

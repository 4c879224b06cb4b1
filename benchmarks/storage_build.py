"""Build the checkpoint sequences the storage benchmark stores, with real training code.

    python benchmarks/storage_build.py KIND OUT [--quick]      KIND: gpt2 | lora | dfl

* ``gpt2``: a small GPT-2 made from a ``GPT2Config`` (no download), fully
  fine-tuned by the Hugging Face ``Trainer`` (AdamW, constant learning rate) on
  a synthetic token corpus built in memory; ``checkpoint-N`` folders every few
  steps, each with model.safetensors, optimizer.pt, scheduler.pt,
  rng_state.pth, trainer_state.json and training_args.bin.
* ``lora``: the same base model with a PEFT LoRA adapter trained by the
  Trainer; each ``checkpoint-N`` also receives the frozen base weights
  (model.safetensors + config.json), as people do who keep base and adapter
  together.
* ``dfl``: a DeepFaceLab-style SAEHD model: ``new_SAEHD_<part>.npy`` files
  (``pickle.dumps({name: float32 ndarray}, 4)``, as DeepFaceLab writes them),
  ``new_SAEHD_data.dat`` and ``new_SAEHD_summary.txt``; each save rewrites
  every file after RMSprop-like updates of every array.

A folder ``OUT`` that holds a ``sequence.json`` with the same parameters is
left as it is, so reruns cost nothing. Runs in its own process: torch stays
out of the benchmark's process, whose size would otherwise show in the peak
RSS of every tool it starts.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import sys
import time
from typing import Any

import numpy as np

STAMP = "sequence.json"
SAVES = {"full": 10, "quick": 6}  # --quick also keeps fewer versions: each costs every tool a process start

GPT2 = {
    "full": {"n_layer": 6, "n_embd": 384, "n_head": 6, "vocab_size": 4096, "n_positions": 128},
    "quick": {"n_layer": 2, "n_embd": 256, "n_head": 4, "vocab_size": 2048, "n_positions": 128},
}
TRAIN = {
    "gpt2": {"learning_rate": 5e-5, "save_steps": 5, "batch": 4, "seq": 64},
    "lora": {"learning_rate": 2e-4, "save_steps": 5, "batch": 4, "seq": 64, "r": 8, "lora_alpha": 16,
             "target_modules": ["c_attn", "c_proj", "c_fc"]},
}  # fmt: skip
# DeepFaceLab: per save, ITERS RMSprop steps at DFL's default learning rate, summed as one update
DFL = {
    "full": {"resolution": 96, "ae_dims": 160, "e_dims": 48, "d_dims": 36, "d_mask_dims": 16},
    "quick": {"resolution": 64, "ae_dims": 64, "e_dims": 24, "d_dims": 16, "d_mask_dims": 8},
}
DFL_STEP = {"lr": 5e-5, "rho": 0.9, "iters_per_save": 25}


def params(kind: str, quick: bool) -> dict[str, Any]:
    size = "quick" if quick else "full"
    if kind == "dfl":
        return {"kind": kind, "size": size, "saves": SAVES[size], "dfl": DFL[size], "step": DFL_STEP}
    return {"kind": kind, "size": size, "saves": SAVES[size], "config": GPT2[size], "train": TRAIN[kind]}


def cached(out: str, wanted: dict[str, Any]) -> bool:
    try:
        with open(os.path.join(out, STAMP)) as fh:
            return bool(json.load(fh)["params"] == wanted)
    except (OSError, ValueError, KeyError):
        return False


def checkpoints(out: str) -> list[str]:
    """The sequence's checkpoint folders, oldest first."""
    names = [n for n in os.listdir(out) if os.path.isdir(os.path.join(out, n))]
    return [os.path.join(out, n) for n in sorted(names, key=lambda n: int(n.rsplit("-", 1)[1]))]


# ---- GPT-2 under the Hugging Face Trainer ---------------------------------------------------


def corpus(vocab: int, n_seq: int, length: int, seed: int = 0) -> np.ndarray:
    """Token sequences from a sparse random Markov chain (learnable, unlike uniform noise)."""
    rng = np.random.default_rng(seed)
    fan = 8
    nexts = rng.integers(0, vocab, size=(vocab, fan))
    probs = 1.0 / np.arange(1, fan + 1)
    probs /= probs.sum()
    seqs = np.empty((n_seq, length), dtype=np.int64)
    seqs[:, 0] = rng.integers(0, vocab, size=n_seq)
    choice = rng.choice(fan, size=(n_seq, length), p=probs)
    for t in range(1, length):
        seqs[:, t] = nexts[seqs[:, t - 1], choice[:, t]]
    return seqs


def _model(cfg: dict[str, Any]) -> Any:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(**cfg, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))


def _dataset(cfg: dict[str, Any], n: int, length: int) -> Any:
    import torch

    seqs = torch.from_numpy(corpus(cfg["vocab_size"], n, min(length, cfg["n_positions"])))

    class Tokens(torch.utils.data.Dataset):  # type: ignore[type-arg]
        def __len__(self) -> int:
            return len(seqs)

        def __getitem__(self, i: int) -> dict[str, Any]:
            return {"input_ids": seqs[i], "labels": seqs[i]}

    return Tokens()


def _train(model: Any, p: dict[str, Any], out: str, callbacks: list[Any]) -> None:
    from transformers import Trainer, TrainingArguments

    t = p["train"]
    steps = t["save_steps"] * p["saves"]
    args = TrainingArguments(
        output_dir=out, max_steps=steps, per_device_train_batch_size=t["batch"], learning_rate=t["learning_rate"],
        lr_scheduler_type="constant", optim="adamw_torch", weight_decay=0.0, save_strategy="steps",
        save_steps=t["save_steps"], logging_steps=1, use_cpu=True, report_to="none", disable_tqdm=True,
        dataloader_num_workers=0, seed=0,
    )  # fmt: skip
    data = _dataset(p["config"], steps * t["batch"], t["seq"])
    Trainer(model=model, args=args, train_dataset=data, callbacks=callbacks).train()


def build_gpt2(out: str, p: dict[str, Any]) -> None:
    _train(_model(p["config"]), p, out, [])


def build_lora(out: str, p: dict[str, Any]) -> None:
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import save_file
    from transformers import TrainerCallback

    model = _model(p["config"])
    base_state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    config_json = model.config.to_json_string()
    t = p["train"]
    lora = LoraConfig(r=t["r"], lora_alpha=t["lora_alpha"], lora_dropout=0.05, target_modules=t["target_modules"],
                      fan_in_fan_out=True, task_type="CAUSAL_LM")  # fmt: skip
    peft_model = get_peft_model(model, lora)

    class KeepBase(TrainerCallback):
        """Write the frozen base weights into every checkpoint folder, beside the adapter."""

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
            save_file(base_state, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
            with open(os.path.join(folder, "config.json"), "w") as fh:
                fh.write(config_json)
            return control

    _train(peft_model, p, out, [KeepBase()])


# ---- DeepFaceLab-style SAEHD ------------------------------------------------------------------


def _conv(name: str, k: int, cin: int, cout: int) -> list[tuple[str, tuple[int, ...]]]:
    return [(f"{name}/weight:0", (k, k, cin, cout)), (f"{name}/bias:0", (cout,))]


def dfl_layout(d: dict[str, int]) -> dict[str, list[tuple[str, tuple[int, ...]]]]:
    """Array names and shapes of each part of an SAEHD 'df' model (DeepFaceLab's layer shapes)."""
    e, ae, dd, res = d["e_dims"], d["ae_dims"], d["d_dims"], d["resolution"]
    low = res // 16
    enc: list[tuple[str, tuple[int, ...]]] = []
    cin = 3
    for i, cout in enumerate([e, e * 2, e * 4, e * 8]):
        enc += _conv(f"encoder/down1/downs_{i}/conv1", 5, cin, cout)
        cin = cout
    flat = cin * low * low
    inter = [
        ("inter/dense1/weight:0", (flat, ae)),
        ("inter/dense1/bias:0", (ae,)),
        ("inter/dense2/weight:0", (ae, low * low * ae)),
        ("inter/dense2/bias:0", (low * low * ae,)),
    ]
    inter += _conv("inter/upscale1/conv1", 3, ae, ae * 4)

    def decoder(prefix: str) -> list[tuple[str, tuple[int, ...]]]:
        out: list[tuple[str, tuple[int, ...]]] = []
        c = ae
        for i, cout in enumerate([dd * 8, dd * 4, dd * 2]):
            out += _conv(f"{prefix}/upscale{i}/conv1", 3, c, cout * 4)
            out += _conv(f"{prefix}/res{i}/conv1", 3, cout, cout) + _conv(f"{prefix}/res{i}/conv2", 3, cout, cout)
            c = cout
        m = d["d_mask_dims"]
        for i, cout in enumerate([m * 8, m * 4, m * 2]):
            out += _conv(f"{prefix}/upscalem{i}/conv1", 3, ae if i == 0 else m * 8 // 2 ** (i - 1), cout * 4)
        out += _conv(f"{prefix}/out_conv", 1, c, 3) + _conv(f"{prefix}/out_convm", 1, m * 2, 1)
        return out

    decoders = {name: decoder(name) for name in ("decoder_src", "decoder_dst")}
    return {"encoder": enc, "inter": inter, **decoders}


def _init(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    if len(shape) == 1:
        return np.zeros(shape, np.float32)
    fan_in = int(np.prod(shape[:-1]))
    limit = np.sqrt(6.0 / (fan_in + shape[-1]))  # glorot uniform, DeepFaceLab's default initialiser
    return rng.uniform(-limit, limit, size=shape).astype(np.float32)


def _write_dfl(out: str, parts: dict[str, dict[str, np.ndarray]], data: dict[str, Any]) -> None:
    os.makedirs(out, exist_ok=True)
    for part, arrays in parts.items():
        with open(os.path.join(out, f"new_SAEHD_{part}.npy"), "wb") as fh:
            fh.write(pickle.dumps(arrays, 4))
    with open(os.path.join(out, "new_SAEHD_data.dat"), "wb") as fh:
        fh.write(pickle.dumps(data))
    o = data["options"]
    with open(os.path.join(out, "new_SAEHD_summary.txt"), "w") as fh:
        fh.write("==---------- Model Summary ----------==\n")
        fh.write(f"== Current iteration: {data['iter']} ==\n")
        fh.write("".join(f"== {k}: {v} ==\n" for k, v in sorted(o.items())))


def build_dfl(out: str, p: dict[str, Any]) -> None:
    """Each save: ``iters_per_save`` RMSprop steps on gradient-like noise, then every file rewritten.

    The steps between two saves are applied as one: independent unit-scale
    steps of size ``lr`` add up to a random walk of size ``lr * sqrt(iters)``,
    and the mean-square accumulator moves ``1 - rho**iters`` of the way to the
    new squared gradients. Biases start at zero, as in DeepFaceLab.
    """
    rng = np.random.default_rng(0)
    d, step = p["dfl"], p["step"]
    layout = dfl_layout(d)
    weights = {part: {n: _init(rng, s) for n, s in arrays} for part, arrays in layout.items()}
    names = [(part, n) for part, arrays in layout.items() for n, _ in arrays]
    ms = {f"acc_{i}": np.full(weights[part][n].shape, 1e-4, np.float32) for i, (part, n) in enumerate(names)}
    options = {"resolution": d["resolution"], "face_type": "wf", "archi": "df", "ae_dims": d["ae_dims"],
               "e_dims": d["e_dims"], "d_dims": d["d_dims"], "d_mask_dims": d["d_mask_dims"], "batch_size": 8,
               "masked_training": True, "lr_dropout": "n", "random_warp": True, "gan_power": 0.0}  # fmt: skip
    preview = rng.random((4, 2, d["resolution"], d["resolution"], 3), dtype=np.float32)
    history: list[list[float]] = []
    iters = step["iters_per_save"]
    walk = np.float32(step["lr"] * np.sqrt(iters))
    keep = np.float32(step["rho"] ** iters)
    for save in range(1, p["saves"] + 1):
        for i, (part, n) in enumerate(names):
            w, acc = weights[part][n], ms[f"acc_{i}"]
            g = rng.standard_normal(w.shape, dtype=np.float32) * np.float32(0.01)
            acc *= keep
            acc += (np.float32(1) - keep) * g * g
            w -= walk * rng.standard_normal(w.shape, dtype=np.float32)
        for it in range((save - 1) * iters + 1, save * iters + 1):
            loss = 1.0 / (1.0 + it / 1000)
            history.append([loss + 0.01 * float(rng.random()), loss * 1.1 + 0.01 * float(rng.random())])
        data = {"iter": save * iters, "options": options, "loss_history": history, "sample_for_preview": preview,
                "choosed_gpu_indexes": None}  # fmt: skip
        _write_dfl(os.path.join(out, f"save-{save * iters}"), {**weights, "src_dst_opt": ms}, data)


BUILDERS = {"gpt2": build_gpt2, "lora": build_lora, "dfl": build_dfl}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=sorted(BUILDERS))
    ap.add_argument("out")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    wanted = params(a.kind, a.quick)
    if cached(a.out, wanted):
        return 0
    shutil.rmtree(a.out, ignore_errors=True)
    os.makedirs(a.out)
    start = time.perf_counter()
    if a.kind != "dfl":
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
    BUILDERS[a.kind](a.out, wanted)
    for stray in os.listdir(a.out):  # the Trainer may leave logs beside the checkpoints
        path = os.path.join(a.out, stray)
        if not stray.startswith(("checkpoint-", "save-")):
            shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
    stamp = {"params": wanted, "build_seconds": time.perf_counter() - start}
    with open(os.path.join(a.out, STAMP), "w") as fh:
        json.dump(stamp, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

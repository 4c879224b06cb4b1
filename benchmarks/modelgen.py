"""Build a model folder that looks like a real training checkpoint.

Weights are seeded Gaussian noise shaped like a transformer's (attention and
MLP matrices, norms near 1, small biases), saved with ``safetensors`` in
float32, bfloat16 and float16 shards, plus a ``torch.save`` optimizer state
(Adam moments) and the small JSON files a trainer writes next to them.

Noise is the hard case for a model store: a trained weight's low mantissa bits
are as random as these, so compression figures here are close to what real
checkpoints give, never flattering.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from safetensors.torch import load_file, save_file

HIDDEN = 1024
MiB = 1 << 20


@dataclass(frozen=True)
class Shard:
    name: str
    dtype: torch.dtype
    share: float  # of the folder's bytes


SHARDS = (
    Shard("model-00001-of-00004.safetensors", torch.float32, 0.28),
    Shard("model-00002-of-00004.safetensors", torch.float32, 0.24),
    Shard("model-00003-of-00004.safetensors", torch.bfloat16, 0.18),
    Shard("model-00004-of-00004.safetensors", torch.float16, 0.15),
)
OPTIMIZER = ("optimizer.pt", 0.15)
CHANGED = SHARDS[3].name  # the shard a "training step" rewrites


def _layer_templates(layer: int) -> Iterator[tuple[str, tuple[int, ...], str]]:
    """(name, shape, kind) of one transformer block; kind picks the value recipe."""
    p = f"model.layers.{layer}"
    for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
        yield f"{p}.self_attn.{proj}.weight", (HIDDEN, HIDDEN), "out" if proj == "o_proj" else "weight"
    yield f"{p}.self_attn.q_proj.bias", (HIDDEN,), "bias"
    yield f"{p}.mlp.gate_proj.weight", (4 * HIDDEN, HIDDEN), "weight"
    yield f"{p}.mlp.up_proj.weight", (4 * HIDDEN, HIDDEN), "weight"
    yield f"{p}.mlp.down_proj.weight", (HIDDEN, 4 * HIDDEN), "out"
    yield f"{p}.input_layernorm.weight", (HIDDEN,), "norm"
    yield f"{p}.post_attention_layernorm.weight", (HIDDEN,), "norm"


def _values(shape: tuple[int, ...], kind: str, gen: torch.Generator) -> torch.Tensor:
    noise = torch.randn(shape, generator=gen)
    if kind == "norm":
        return 1.0 + 0.05 * noise
    if kind == "bias":
        return 0.01 * noise
    if kind == "out":
        return 0.02 / 4.0 * noise  # GPT-2 style scaled residual projections
    return 0.02 * noise


def _tensors(budget: int, dtype: torch.dtype, first_layer: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Tensors of ``dtype`` totalling just under ``budget`` bytes."""
    item = torch.tensor([], dtype=dtype).element_size()
    out: dict[str, torch.Tensor] = {}
    left, layer = budget, first_layer
    while left > 0:
        for name, shape, kind in _layer_templates(layer):
            nbytes = item * int(torch.Size(shape).numel())
            if nbytes > left:  # fill the rest with an embedding-like slab
                rows = left // (HIDDEN * item)
                if rows:
                    out[f"model.embed_part_{layer}.weight"] = _values((rows, HIDDEN), "weight", gen).to(dtype)
                return out
            out[name] = _values(shape, kind, gen).to(dtype)
            left -= nbytes
        layer += 1
    return out


def _optimizer_state(budget: int, gen: torch.Generator) -> dict[str, object]:
    """An Adam ``state_dict`` whose moment tensors total about ``budget`` bytes."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    left, index = budget, 0
    while left >= 8 * HIDDEN:
        rows = min(4 * HIDDEN, left // (8 * HIDDEN))  # two fp32 moments per parameter
        state[index] = {
            "step": torch.tensor(1000.0),
            "exp_avg": 1e-3 * torch.randn((rows, HIDDEN), generator=gen),
            "exp_avg_sq": (1e-4 * torch.randn((rows, HIDDEN), generator=gen)) ** 2,
        }
        left -= 8 * rows * HIDDEN
        index += 1
    groups = [{"lr": 3e-4, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01, "params": list(state)}]
    return {"state": state, "param_groups": groups}


def _small_files(folder: str, total: int) -> None:
    config = {
        "architectures": ["BenchForCausalLM"],
        "hidden_size": HIDDEN,
        "intermediate_size": 4 * HIDDEN,
        "num_attention_heads": 16,
        "torch_dtype": "float32",
        "bench_total_bytes": total,
    }
    files = {
        "config.json": config,
        "generation_config.json": {"max_new_tokens": 256, "temperature": 0.7},
        "trainer_state.json": {
            "global_step": 1000,
            "log_history": [{"step": s, "loss": round(3.0 / (1 + s / 200), 5)} for s in range(0, 1000, 10)],
        },
        "tokenizer.json": {"model": {"vocab": {f"tok{i:05d}": i for i in range(50_000)}}},
    }
    for name, doc in files.items():
        with open(os.path.join(folder, name), "w") as fh:
            json.dump(doc, fh, indent=1)


def build(folder: str, size_bytes: int, *, seed: int = 0) -> list[str]:
    """Write a model folder of about ``size_bytes`` into ``folder`` (created); return its files."""
    os.makedirs(folder, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    layer = 0
    for shard in SHARDS:
        tensors = _tensors(int(size_bytes * shard.share), shard.dtype, layer, gen)
        layer += 1 + len(tensors) // 10
        save_file(tensors, os.path.join(folder, shard.name), metadata={"format": "pt"})
        del tensors
    name, share = OPTIMIZER
    torch.save(_optimizer_state(int(size_bytes * share), gen), os.path.join(folder, name))
    _small_files(folder, size_bytes)
    return sorted(os.listdir(folder))


def training_step(path: str, *, seed: int = 1, scale: float = 1e-4) -> None:
    """Rewrite a safetensors file in place as an optimizer step would: ``w + scale * noise``."""
    gen = torch.Generator().manual_seed(seed)
    tensors = load_file(path)
    stepped = {
        name: (t.float() + scale * torch.randn(t.shape, generator=gen)).to(t.dtype) for name, t in tensors.items()
    }
    del tensors
    save_file(stepped, path, metadata={"format": "pt"})


def folder_bytes(folder: str) -> tuple[int, int]:
    """(apparent bytes, allocated bytes on disk) of every file under ``folder``."""
    apparent = allocated = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            apparent += st.st_size
            allocated += st.st_blocks * 512
    return apparent, allocated

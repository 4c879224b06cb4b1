"""Files the format tests share: DeepFaceLab folders and hostile pickles."""

from __future__ import annotations

import os
import pickle
import shlex
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np


class Touch:
    """Unpickling this runs ``touch <marker>``: the payload a hostile file carries."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {shlex.quote(self.marker)}",))


def hostile_pickle(marker: Path, protocol: int = 4) -> bytes:
    """A pickled dict that looks like weights but runs a command when loaded."""
    weights = {"conv/weight:0": np.zeros((4, 4), np.float32), "evil": Touch(marker)}
    return pickle.dumps(weights, protocol)


def dfl_weights(seed: int, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}


ENCODER = {"down1/conv1/weight:0": (5, 5, 3, 64), "down1/conv1/bias:0": (64,), "dense1/weight:0": (256, 128)}
DECODER = {"upscale0/conv1/weight:0": (3, 3, 128, 256), "upscale0/conv1/bias:0": (256,), "out/weight:0": (1, 1, 64, 3)}


def write_dfl_model(
    folder: Path,
    prefix: str,
    *,
    iteration: int,
    history: list[list[float]],
    options: dict[str, Any],
    parts: tuple[str, ...] = ("encoder", "decoder"),
) -> None:
    """Write a model the way DeepFaceLab saves one: pickled weight dicts and ``_data.dat``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, part in enumerate(parts):
        shapes = ENCODER if i % 2 == 0 else DECODER
        (folder / f"{prefix}_{part}.npy").write_bytes(pickle.dumps(dfl_weights(i, shapes), 4))
    preview = [np.zeros((2, 32, 32, 3), np.float32), np.ones((2, 32, 32, 3), np.float32)]
    data = {
        "iter": iteration,
        "options": options,
        "loss_history": history,
        "sample_for_preview": preview,
        "choosed_gpu_indexes": [0],
    }
    (folder / f"{prefix}_data.dat").write_bytes(pickle.dumps(data))
    (folder / f"{prefix}_summary.txt").write_text(f"== Model summary ==\nIteration: {iteration}\n")


SAEHD_OPTIONS: dict[str, Any] = {
    "resolution": 128,
    "face_type": "wf",
    "archi": "liae-ud",
    "ae_dims": 256,
    "e_dims": 64,
    "d_dims": 64,
    "d_mask_dims": 22,
    "batch_size": 8,
    "random_warp": True,
    "lr_dropout": "n",
    "gan_power": 0.0,
}


def replace_member(path: Path, suffix: str, data: bytes) -> None:
    """Rewrite the zip at ``path`` with the member ending in ``suffix`` replaced by ``data``."""
    with zipfile.ZipFile(path) as src:
        members = [(info, src.read(info)) for info in src.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as dst:
        for info, content in members:
            dst.writestr(info, data if info.filename.endswith(suffix) else content)


def _gguf_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def write_gguf(path: Path, tensors: list[tuple[str, tuple[int, ...], int, bytes]], alignment: int = 32) -> int:
    """A GGUF v3 file, laid out per the spec; returns the data section's offset."""
    kv = [
        _gguf_string("general.architecture") + struct.pack("<I", 8) + _gguf_string("llama"),
        _gguf_string("general.name") + struct.pack("<I", 8) + _gguf_string("tiny"),
        _gguf_string("general.alignment") + struct.pack("<I", 4) + struct.pack("<I", alignment),
        _gguf_string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2) + _gguf_string("a") + _gguf_string("b"),
        _gguf_string("tokenizer.ggml.scores") + struct.pack("<IIQ", 9, 6, 2) + struct.pack("<ff", 0.5, 0.25),
    ]
    infos, offset, blobs = [], 0, []
    for name, shape, kind, blob in tensors:
        infos.append(_gguf_string(name) + struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", d) for d in shape)
                     + struct.pack("<IQ", kind, offset))  # fmt: skip
        padded = blob + b"\x00" * (-len(blob) % alignment)
        blobs.append(padded)
        offset += len(padded)
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv)) + b"".join(kv) + b"".join(infos)
    base = -(-len(head) // alignment) * alignment
    path.write_bytes(head + b"\x00" * (base - len(head)) + b"".join(blobs))
    return base

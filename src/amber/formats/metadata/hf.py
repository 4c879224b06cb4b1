"""Hugging Face model and Trainer checkpoint folders.

A folder is one if it has a transformers ``config.json`` (with ``model_type``
or ``architectures``), a sharded-weights index or a ``trainer_state.json``.
A Trainer output folder holding only ``checkpoint-N`` folders is described by
its newest checkpoint. Parameters are summed from the weight headers.
"""

from __future__ import annotations

import os
import re
from typing import Any

from amber.formats import Detected
from amber.formats.metadata import trainer
from amber.formats.metadata.jsonfile import read_object
from amber.formats.metadata.weights import summarize

MODEL_TYPE = "hf-transformers"
_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_BIN = re.compile(r"^pytorch_model(-\d+-of-\d+)?\.bin$")


def detect(folder: str) -> Detected | None:
    found = _detect_here(folder)
    if found is not None:
        return found
    checkpoints = _checkpoints(folder)
    if not checkpoints:
        return None
    found = _detect_here(os.path.join(folder, checkpoints[-1]))
    if found is None:
        return None
    found.metadata["checkpoint"] = checkpoints[-1]
    found.metadata["checkpoints"] = checkpoints
    return found


def _detect_here(folder: str) -> Detected | None:
    config = read_object(os.path.join(folder, "config.json"))
    is_model = config is not None and ("model_type" in config or "architectures" in config)
    index_present = any(os.path.isfile(os.path.join(folder, name)) for name in _INDEXES)
    found = Detected(model_type=MODEL_TYPE)
    has_state = trainer.apply(folder, found)
    if not (is_model or index_present or has_state):
        return None
    if config is not None:
        _from_config(config, found.metadata)
    summarize(weight_files(folder)).into(found.metadata)
    return found


def _from_config(config: dict[str, Any], metadata: dict[str, Any]) -> None:
    architectures = config.get("architectures")
    if isinstance(architectures, list) and all(isinstance(a, str) for a in architectures):
        metadata["architectures"] = list(architectures)
    for key, target in (("model_type", "hf_model_type"), ("transformers_version", "transformers_version")):
        if isinstance(config.get(key), str):
            metadata[target] = config[key]
    dtype = config.get("dtype", config.get("torch_dtype"))
    if isinstance(dtype, str):
        metadata["dtype"] = dtype


def weight_files(folder: str) -> list[str]:
    """The model's weight files: the shards an index names, else the safetensors, else .bin."""
    for index_name in _INDEXES:
        index = read_object(os.path.join(folder, index_name))
        if index is not None and isinstance(index.get("weight_map"), dict):
            shards = sorted({v for v in index["weight_map"].values() if isinstance(v, str) and "/" not in v})
            return [os.path.join(folder, s) for s in shards if os.path.isfile(os.path.join(folder, s))]
    names = _names(folder)
    safetensors = [n for n in names if n.endswith(".safetensors") and not n.startswith("adapter_model")]
    chosen = safetensors or [n for n in names if _BIN.match(n)]
    return [os.path.join(folder, n) for n in chosen]


def _checkpoints(folder: str) -> list[str]:
    found = [(int(m.group(1)), n) for n in _names(folder, dirs=True) if (m := _CHECKPOINT.match(n))]
    return [n for _, n in sorted(found)]


def _names(folder: str, *, dirs: bool = False) -> list[str]:
    try:
        with os.scandir(folder) as entries:
            kind = "is_dir" if dirs else "is_file"
            return sorted(e.name for e in entries if getattr(e, kind)(follow_symlinks=False))
    except (FileNotFoundError, NotADirectoryError):
        return []

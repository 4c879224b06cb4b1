"""PyTorch Lightning checkpoints (``*.ckpt``).

A Lightning checkpoint is a zip-form PyTorch checkpoint whose pickled dict has
``pytorch-lightning_version``, ``epoch``, ``global_step`` and ``state_dict``.
``global_step`` is the iteration. A ``ModelCheckpoint`` callback state with a
``monitor`` gives that metric (its ``current_score``, else
``best_model_score``; one float read from the zip) and ``best_model_score``.
In a folder, ``last.ckpt`` is described, else the newest ``*.ckpt``.
"""

from __future__ import annotations

import os
from typing import Any

from amber.formats import Detected
from amber.formats.metadata.jsonfile import integer, number
from amber.formats.metadata.weights import load_checkpoint, report_refused, torch_tensors
from amber.formats.tensors import main_dtype

MODEL_TYPE = "lightning"
VERSION_KEYS = ("pytorch-lightning_version", "lightning_version")


def detect(folder: str) -> Detected | None:
    path = _checkpoint(folder)
    if path is None:
        return None
    found = detect_file(path)
    if found is not None:
        found.metadata["checkpoint"] = os.path.basename(path)
    return found


def detect_file(path: str) -> Detected | None:
    """The Lightning checkpoint at ``path``, or None if it is not one."""
    loaded = load_checkpoint(path)
    if loaded is None:
        return None
    found = describe(loaded.value, path)
    if found is not None and loaded.refused:
        report_refused(found.metadata, {os.path.basename(path): loaded.refused})
    return found


def describe(value: Any, path: str) -> Detected | None:
    """Detected for a loaded checkpoint object, if Lightning wrote it."""
    if not isinstance(value, dict):
        return None
    version = next((value[k] for k in VERSION_KEYS if isinstance(value.get(k), str)), None)
    if version is None:
        return None
    found = Detected(model_type=MODEL_TYPE, metadata={"lightning_version": version})
    found.iteration = integer(value.get("global_step"))
    epoch = integer(value.get("epoch"))
    if epoch is not None:
        found.metadata["epoch"] = epoch
    tensors = torch_tensors(value.get("state_dict"))
    if tensors is not None:
        found.metadata["parameters"] = sum(n for _, n in tensors)
        found.metadata["dtype"] = main_dtype(tensors)
    callbacks = value.get("callbacks")
    if isinstance(callbacks, dict):
        for key, state in callbacks.items():
            if isinstance(key, str) and key.startswith("ModelCheckpoint") and isinstance(state, dict):
                _scores(state, path, found)
    return found


def _scores(state: dict[str, Any], path: str, found: Detected) -> None:
    monitor = state.get("monitor")
    if not isinstance(monitor, str):
        return
    current, best = _score(state.get("current_score"), path), _score(state.get("best_model_score"), path)
    if current is not None or best is not None:
        found.metrics[monitor] = current if current is not None else best  # type: ignore[assignment]
    if best is not None:
        found.metadata["best_model_score"] = best
        found.metadata["monitor"] = monitor


def _score(value: Any, path: str) -> float | None:
    from amber.formats import torch_zip  # a checkpoint was loaded, so these are imported already
    from amber.formats.safe_pickle import TensorInfo

    if isinstance(value, TensorInfo):
        return number(torch_zip.read_scalar(path, value))
    return number(value)


def _checkpoint(folder: str) -> str | None:
    try:
        with os.scandir(folder) as entries:
            ckpts = [e for e in entries if e.is_file(follow_symlinks=False) and e.name.endswith(".ckpt")]
    except (FileNotFoundError, NotADirectoryError):
        return None
    last = [e for e in ckpts if e.name == "last.ckpt"]
    chosen = last or sorted(ckpts, key=lambda e: (e.stat().st_mtime_ns, e.name))[-1:]
    return chosen[0].path if chosen else None

"""Parameter counts and dtypes of weight files, from their headers only.

safetensors, ``.npy``/``.npz`` and GGUF headers list every tensor. A PyTorch
checkpoint lists them in its ``data.pkl``, read by the safe unpickler in
lenient mode; tensors sharing storage (tied weights) count once. Globals a
checkpoint asks for outside the safe table are reported, per file, in
``metadata['unsafe_pickles']``: they were never loaded, but whoever loads the
file with ``torch.load(weights_only=False)`` would run them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from amber.errors import InvalidInput
from amber.formats.regions import Malformed
from amber.formats.sniff import is_zip
from amber.formats.tensors import Weights, main_dtype

if TYPE_CHECKING:
    from amber.formats.safe_pickle import Loaded, TensorInfo

# The parsers (and the safe unpickler) are imported by the functions that read a
# file of their format, so a folder without such files never loads them.

UNSAFE = "unsafe_pickles"
_STATE_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "params", "weights")


@dataclass(frozen=True)
class Summary:
    """What a set of weight files adds up to; None where no header said."""

    parameters: int | None
    dtype: str | None
    refused: dict[str, list[str]] = field(default_factory=dict)  # file name -> globals never loaded

    def into(self, metadata: dict[str, Any]) -> None:
        if self.parameters is not None:
            metadata["parameters"] = self.parameters
        if self.dtype is not None:
            metadata.setdefault("dtype", self.dtype)
        report_refused(metadata, self.refused)


def report_refused(metadata: dict[str, Any], refused: dict[str, list[str]]) -> None:
    if refused:
        metadata.setdefault(UNSAFE, {}).update(refused)


def read_header(path: str) -> Weights | None:
    """The tensor header of ``path`` (not for PyTorch checkpoints), or None if unreadable."""
    from amber.formats import registry

    try:
        with open(path, "rb", buffering=1 << 16) as f:
            size = os.fstat(f.fileno()).st_size
            weights = registry.read_weights(f, size, path)
    except (OSError, Malformed):
        return None
    return weights if weights is not None and weights.format != "torch" else None


def load_checkpoint(path: str) -> Loaded | None:
    """A zip-form PyTorch checkpoint's pickled object, or None if ``path`` is not one."""
    if not is_torch_zip(path):
        return None
    from amber.formats import torch_zip

    try:
        return torch_zip.load(path)
    except InvalidInput:
        return None


def summarize(paths: Sequence[str]) -> Summary:
    """Parameters and main dtype of ``paths`` together; unreadable files add nothing."""
    total, counted, by_dtype = 0, False, []
    refused: dict[str, list[str]] = {}
    for path in paths:
        loaded = load_checkpoint(path)
        if loaded is not None:
            if loaded.refused:
                refused[os.path.basename(path)] = loaded.refused
            tensors = torch_tensors(loaded.value)
        else:
            weights = read_header(path)
            tensors = None if weights is None else [(t.dtype, t.numel) for t in weights.tensors]
        if tensors is None:
            continue
        counted = True
        total += sum(n for _, n in tensors)
        by_dtype.extend(tensors)
    return Summary(total if counted else None, main_dtype(by_dtype), refused)


def torch_tensors(value: Any) -> list[tuple[str, int]] | None:
    """(dtype, numel) of each distinct tensor of a checkpoint's state dict."""
    state = state_dict(value)
    if state is None:
        return None
    seen: dict[tuple[str, int, tuple[int, ...]], tuple[str, int]] = {}
    for tensor in state:
        seen.setdefault((tensor.storage.key, tensor.offset, tensor.shape), (tensor.dtype, tensor.numel))
    return list(seen.values())


def state_dict(value: Any, depth: int = 0) -> list[TensorInfo] | None:
    """The tensors of the state dict inside a checkpoint object, if it has one."""
    from amber.formats.safe_pickle import TensorInfo

    if isinstance(value, TensorInfo):
        return [value]
    if not isinstance(value, dict) or depth > 2:
        return None
    tensors = [v for v in value.values() if isinstance(v, TensorInfo)]
    if tensors and len(tensors) * 2 >= len(value):
        return tensors
    for key in _STATE_KEYS:
        found = state_dict(value.get(key), depth + 1)
        if found is not None:
            return found
    return None


def is_torch_zip(path: str) -> bool:
    """True for a zip-form PyTorch checkpoint (a zip with a data.pkl)."""
    try:
        with open(path, "rb") as f:
            if not is_zip(f.read(4)):
                return False
            from amber.formats import torch_zip
            from amber.formats.zipmembers import members

            return torch_zip.find_pickle(members(f, os.fstat(f.fileno()).st_size)) is not None
    except (OSError, Malformed):
        return False

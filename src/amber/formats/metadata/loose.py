"""Loose weight files: a folder of (or a path to) safetensors, PyTorch, NumPy or GGUF files.

The format is read from each file's first bytes. In a folder the format with
the most bytes wins; its files' parameters add up. GGUF adds its
``general.*`` metadata (architecture, name, file type).
"""

from __future__ import annotations

import os
from typing import Any

from amber.formats import Detected
from amber.formats.metadata import lightning
from amber.formats.metadata.weights import is_torch_zip, read_header, summarize
from amber.formats.sniff import is_pickle

EXTENSIONS = {
    ".safetensors": "safetensors",
    ".pt": "torch", ".pth": "torch", ".bin": "torch", ".ckpt": "torch",
    ".npy": "numpy", ".npz": "numpy",
    ".gguf": "gguf",
}  # fmt: skip
_GGUF_KEYS = {"general.architecture": "architecture", "general.name": "name", "general.file_type": "file_type"}


def detect(folder: str) -> Detected | None:
    by_format: dict[str, list[str]] = {}
    sizes: dict[str, int] = {}
    for entry in _entries(folder):
        kind = _format_of(entry.path)
        if kind is not None:
            by_format.setdefault(kind, []).append(entry.path)
            sizes[kind] = sizes.get(kind, 0) + entry.stat().st_size
    if not by_format:
        return None
    kind = max(sizes, key=lambda k: (sizes[k], k))
    return _describe(kind, sorted(by_format[kind]))


def detect_file(path: str) -> Detected | None:
    kind = _format_of(path)
    if kind is None:
        return None
    if kind == "torch":
        found = lightning.detect_file(path)
        if found is not None:
            return found
    return _describe(kind, [path])


def _describe(kind: str, paths: list[str]) -> Detected:
    found = Detected(model_type=kind)
    summarize(paths).into(found.metadata)
    if kind == "gguf":
        found.metadata.update(_gguf_info(paths[0]))
    if len(paths) > 1:
        found.metadata["files"] = len(paths)
    return found


def _format_of(path: str) -> str | None:
    """The weight format of ``path`` by content, for files with a weights extension."""
    kind = EXTENSIONS.get(os.path.splitext(path)[1].lower())
    if kind == "torch":
        return kind if is_torch_zip(path) or _is_legacy_torch(path) else None
    if kind is not None:
        weights = read_header(path)
        return weights.format if weights is not None else None
    return None


def _is_legacy_torch(path: str) -> bool:
    """A pre-1.6 PyTorch file: consecutive pickles, the first being a magic number."""
    try:
        with open(path, "rb") as f:
            return is_pickle(f.read(2))
    except OSError:
        return False


def _gguf_info(path: str) -> dict[str, Any]:
    weights = read_header(path)
    if weights is None:
        return {}
    out: dict[str, Any] = {"gguf_version": weights.info.get("version")}
    for key, target in _GGUF_KEYS.items():
        if key in weights.info:
            out[target] = weights.info[key]
    return out


def _entries(folder: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as entries:
            return [e for e in entries if e.is_file(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        return []

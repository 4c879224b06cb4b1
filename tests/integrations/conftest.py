"""Shared by the integration tests: the example scripts as modules, the CLI as a subprocess."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "integrations"


def load_example(name: str) -> ModuleType:
    """``examples/integrations/<name>.py`` imported as a module (each test file keeps its own copy)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def amber_cmd(*args: str) -> list[str]:
    """The argv that runs ``amber ARGS`` in a fresh interpreter."""
    return [sys.executable, "-m", "amber", *args]


def env() -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}


def run(argv: list[str], *, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout)


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` by relative path, as a SHA-256 of its bytes."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out

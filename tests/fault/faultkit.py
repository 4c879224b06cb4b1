"""What every fault test needs: run the CLI, build model folders, check a repository after a fault.

The checks here are the promises of docs/reliability.md, written once:

* ``verify_clean``: ``amber verify --data`` exits 0 and reports no problem;
* ``leftovers``: no staging folder (``.NAME.amber-*``) is left beside a model folder;
* ``assert_versions_restore``: every version still exports bit-exact to the tree it was taken from.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import blake3
import numpy as np
from safetensors.numpy import save as safetensors_bytes
from tests.conftest import tree_bytes

import amber

SIGKILLED = -9
CONTROL_VARS = ("AMBER_CRASH_AT", "AMBER_FAULT", "AMBER_NO_EXCHANGE", "AMBER_REPO", "AMBER_LOCK_TIMEOUT")

Link = tuple[str, str]  # ("link", target)
Files = Mapping[str, "bytes | Link"]


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI run: no fault variables unless asked for, no quiet period."""
    env = {k: v for k, v in os.environ.items() if k not in CONTROL_VARS}
    env.update({"AMBER_QUIET_SECONDS": "0", "COLUMNS": "200", "PYTHONDONTWRITEBYTECODE": "1"})
    env.update(extra)
    return env


def amber_cli(*args: str, cwd: Path, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m amber ARGS`` in ``cwd``; keyword arguments become environment variables."""
    return subprocess.run(
        [sys.executable, "-m", "amber", *args],
        cwd=cwd,
        env=cli_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def amber_popen(*args: str, cwd: Path, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "amber", *args],
        cwd=cwd,
        env=cli_env(**env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


def one_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The single 'Error: ...' line of a failed command; no traceback allowed."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = error_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr
    return lines[0]


# ---- model folders ---------------------------------------------------------------------------


def model_files(seed: int, *, floats: int = 20_000, extra: str | None = None) -> dict[str, bytes | Link]:
    """A small real model folder: safetensors weights, a .npy optimizer state, config, a sub-folder, a link."""
    rng = np.random.default_rng(seed)
    weights = {
        "encoder.weight": (rng.standard_normal(floats) * 0.02).astype(np.float32),
        "encoder.bias": np.zeros(64, dtype=np.float32) + seed,
    }
    files: dict[str, bytes | Link] = {
        "model.safetensors": safetensors_bytes(weights, metadata={"seed": str(seed)}),
        "optimizer.npy": npy_bytes(rng.standard_normal(floats // 2).astype(np.float32)),
        "config.json": json.dumps({"hidden": 64, "seed": seed}).encode(),
        "logs/train.txt": f"step {seed * 1000}\n".encode() * 50,
        "current": ("link", "model.safetensors"),
    }
    if extra is not None:
        files[f"logs/{extra}.txt"] = extra.encode() * 10
    return files


def npy_bytes(array: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def write_tree(folder: Path, files: Files) -> dict[str, object]:
    """Make ``folder`` hold exactly ``files``; return its tree_bytes."""
    if folder.exists():
        for child in folder.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    for rel, content in sorted(files.items()):
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, tuple):
            os.symlink(content[1], path)
        else:
            path.write_bytes(content)
    return tree_bytes(folder)


# ---- checks after a fault --------------------------------------------------------------------


def tree_digest(root: Path) -> str:
    """One hash for a whole tree (paths, kinds, modes, bytes, link targets): cheap to keep per state."""
    h = blake3.blake3()
    for rel, item in sorted(tree_bytes(root).items()):
        h.update(os.fsencode(rel) + b"\0")
        assert isinstance(item, tuple)
        for part in item:
            h.update(part if isinstance(part, bytes) else str(part).encode())
            h.update(b"\0")
    return h.hexdigest()


def verify_clean(root: Path, **env: str) -> dict[str, Any]:
    """``amber verify --data --json`` exits 0 and reports no problem; return its report."""
    proc = amber_cli("verify", "--data", "--json", cwd=root, **env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["problems"] == []
    assert doc["ok"] is True
    return doc


def leftovers(parent: Path) -> list[str]:
    """Staging or temp folders Amber left beside model folders (``.NAME.amber-*``)."""
    return sorted(name for name in os.listdir(parent) if ".amber-" in name)


def journal_entries(root: Path) -> list[str]:
    folder = root / ".amber" / "journal"
    return sorted(os.listdir(folder)) if folder.is_dir() else []


def versions_by_ref(root: Path) -> dict[str, amber.Version]:
    with amber.Repo(root) as repo:
        return {v.ref: v for v in repo.versions()}


def export_tree(repo: amber.Repo, ref: str, dest: Path) -> dict[str, object]:
    if dest.exists():
        shutil.rmtree(dest)
    repo.export(ref, dest)
    tree = tree_bytes(dest)
    shutil.rmtree(dest)
    return tree


def assert_versions_restore(root: Path, expected: Mapping[str, dict[str, object]], scratch: Path) -> None:
    """Every version id in ``expected`` is listed and exports to exactly its tree."""
    with amber.Repo(root) as repo:
        listed = {v.id: v.ref for v in repo.versions()}
        for vid, tree in expected.items():
            assert vid in listed, f"version {vid[:12]} was lost"
            assert tree == export_tree(repo, vid, scratch / "export"), f"{listed[vid]} does not restore bit-exact"


def snapshot_in_process(root: Path, folder: Path, model: str, **kw: Any) -> amber.Version:
    with amber.Repo(root) as repo:
        return repo.snapshot(folder, model=model, **kw)


def object_path(root: Path, oid: str) -> Path:
    return root / ".amber" / "objects" / oid[:2] / oid


def rounds(default: int) -> int:
    """How many rounds a randomized fault test runs: $AMBER_FAULT_ROUNDS, else ``default``."""
    return int(os.environ.get("AMBER_FAULT_ROUNDS", default))

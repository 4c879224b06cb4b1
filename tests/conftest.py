"""Shared fixtures: a fresh repository in a temp folder, and a CLI runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import amber

os.environ.setdefault("AMBER_QUIET_SECONDS", "0")  # tests write files right before restoring


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AMBER_REPO", raising=False)
    return tmp_path


@pytest.fixture
def repo(work: Path) -> amber.Repo:
    r = amber.Repo.init(work)
    yield r
    r.close()


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, input: str | None = None):
    """Run ``amber`` as a real subprocess; return the CompletedProcess."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "amber", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        input=input,
        timeout=300,
    )


def cli_json(*args: str, cwd: Path | None = None):
    proc = run_cli(*args, "--json", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def tree_bytes(root: Path) -> dict[str, object]:
    """Every entry under ``root``: files by content and mode, links by target, dirs by mode."""
    out: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            st = path.lstat()
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                out[rel] = ("dir", st.st_mode & 0o7777)
            else:
                out[rel] = ("file", path.read_bytes(), st.st_mode & 0o7777)
    return out

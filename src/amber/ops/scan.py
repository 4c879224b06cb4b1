"""Walk a model folder into entries, refusing what Amber cannot keep safely."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from amber.errors import InvalidInput
from amber.ops.manifest import check_link

AMBER_DIR = ".amber"


@dataclass(frozen=True)
class Found:
    path: str  # relative, '/'-separated
    type: str  # "file", "dir", "symlink"
    mode: int
    st: os.stat_result
    target: str | None = None


def check_source(folder: str, repo_root: str) -> str:
    """The absolute path of a folder or file that may be snapshotted."""
    path = os.path.abspath(folder)
    if not os.path.lexists(path):
        raise InvalidInput(f"'{folder}' does not exist")
    if os.path.islink(path):
        raise InvalidInput(f"'{folder}' is a symlink; snapshot the folder it points to")
    st = os.stat(path)
    if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
        raise InvalidInput(f"'{folder}' is neither a folder nor a regular file")
    amber = os.path.join(repo_root, AMBER_DIR)
    if path in (repo_root, amber) or path.startswith(amber + os.sep):
        raise InvalidInput(f"'{folder}' is the repository itself; snapshot a model folder inside it")
    if stat.S_ISDIR(st.st_mode) and os.path.exists(os.path.join(path, AMBER_DIR)):
        raise InvalidInput(f"'{folder}' holds a .amber repository; Amber does not snapshot repositories")
    return path


def walk(root: str) -> list[Found]:
    """Every entry under ``root`` (a folder), sorted by path, links not followed."""
    out: list[Found] = []
    _walk(root, "", out)
    out.sort(key=lambda f: f.path)
    links = {f.path: f.target or "" for f in out if f.type == "symlink"}
    for path, target in links.items():
        try:
            check_link(path, target, links)
        except InvalidInput:
            raise InvalidInput(
                f"symlink '{path}' points outside the folder ('{target}') through another link; "
                "Amber never follows it",
                hint="replace it with a link that stays inside the folder",
            ) from None
    return out


def _walk(root: str, rel: str, out: list[Found]) -> None:
    with os.scandir(os.path.join(root, rel) if rel else root) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        path = f"{rel}/{entry.name}" if rel else entry.name
        st = entry.stat(follow_symlinks=False)
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(entry.path)
            try:
                check_link(path, target)
            except InvalidInput:
                raise InvalidInput(
                    f"symlink '{path}' points outside the folder ('{target}'); Amber never follows it",
                    hint="replace it with a copy of what it points to, or a relative link inside the folder",
                ) from None
            out.append(Found(path, "symlink", 0o777, st, target))
        elif stat.S_ISDIR(st.st_mode):
            if entry.name == AMBER_DIR:
                raise InvalidInput(f"'{path}' is an Amber repository inside the model folder")
            out.append(Found(path, "dir", mode, st))
            _walk(root, path, out)
        elif stat.S_ISREG(st.st_mode):
            out.append(Found(path, "file", mode, st))
        else:
            raise InvalidInput(f"'{path}' is not a regular file, folder or symlink (a socket, FIFO or device)")

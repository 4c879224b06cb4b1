"""Is a model folder in use? Open file handles (/proc) and recent writes."""

from __future__ import annotations

import os
import time

from amber.errors import FolderInUse

DEFAULT_QUIET_SECONDS = 5.0


def quiet_seconds() -> float:
    return float(os.environ.get("AMBER_QUIET_SECONDS", DEFAULT_QUIET_SECONDS))


def holders(folder: str) -> list[tuple[int, str, str]]:
    """(pid, command, path) for every other process holding a file under ``folder`` open."""
    prefix = folder.rstrip(os.sep) + os.sep
    me = os.getpid()
    found = []
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return []
    for pid in pids:
        if pid == me:
            continue
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if target == folder or target.startswith(prefix):
                found.append((pid, _command(pid), target))
                break
    return found


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace").strip()[:80]
    except OSError:
        return "?"


def newest_write(folder: str) -> tuple[float, str] | None:
    """(mtime, path) of the most recently modified entry under ``folder``."""
    if not os.path.isdir(folder):
        st = os.stat(folder, follow_symlinks=False)
        return st.st_mtime, folder
    best: tuple[float, str] | None = None
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            try:
                mtime = os.stat(path, follow_symlinks=False).st_mtime
            except OSError:
                continue
            if best is None or mtime > best[0]:
                best = (mtime, path)
    return best


def check_idle(folder: str, shown: str) -> None:
    """Raise FolderInUse if a process has the folder open or wrote it recently."""
    for pid, command, path in holders(folder):
        held = os.path.relpath(path, os.path.dirname(folder))
        raise FolderInUse(
            f"'{shown}' is in use: process {pid} ({command}) has '{held}' open",
            hint="stop training (or the program using it) first, or pass --force",
        )
    quiet = quiet_seconds()
    latest = newest_write(folder)
    if latest and time.time() - latest[0] < quiet:
        raise FolderInUse(
            f"'{shown}' was written {time.time() - latest[0]:.1f}s ago ('{os.path.basename(latest[1])}'); "
            f"training may still be saving",
            hint=f"wait {quiet:.0f} seconds after the last write, or pass --force",
        )

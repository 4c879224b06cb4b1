"""Swap a staged folder into place atomically, with a journal for crashes.

Linux's ``renameat2(RENAME_EXCHANGE)`` exchanges two paths in one step, so the
model folder is at every instant either wholly the old tree or wholly the new
one. Where the kernel or filesystem lacks it, two renames are used and the
journal lets the next Amber command finish (or undo) a swap cut in half.

Journal (``.amber/journal/<model>.json``): the folder, the staging path, both
inodes before the swap, and the version being restored. Recovery compares the
inode now at the folder's path with the recorded ones to learn whether the swap
happened, then rolls forward (record the new head, remove the old tree) or back
(remove the staging tree).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import json
import os
import shutil
from typing import Any

from amber.store.atomic import fsync_dir, write_atomic

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_renameat2 = getattr(_libc, "renameat2", None)


def exchange(a: str, b: str) -> bool:
    """Atomically exchange paths ``a`` and ``b``; False if unsupported here."""
    if _renameat2 is None or os.environ.get("AMBER_NO_EXCHANGE"):
        return False
    res = _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if res == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), a)


def identity(path: str) -> list[int] | None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return [st.st_dev, st.st_ino]


def journal_path(amber: str, model: str) -> str:
    return os.path.join(amber, "journal", f"{model}.json")


def write_journal(amber: str, model: str, doc: dict[str, Any]) -> None:
    folder = os.path.join(amber, "journal")
    os.makedirs(folder, exist_ok=True)
    write_atomic(journal_path(amber, model), [json.dumps(doc).encode()], mode=0o644)
    fsync_dir(folder)


def read_journal(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as fh:
            doc = json.load(fh)
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def clear_journal(amber: str, model: str) -> None:
    try:
        os.unlink(journal_path(amber, model))
    except FileNotFoundError:
        return
    fsync_dir(os.path.join(amber, "journal"))


def remove_tree(path: str) -> None:
    """Remove a file or folder tree; read-only folders are made writable first."""
    if not os.path.lexists(path):
        return
    if os.path.isdir(path) and not os.path.islink(path):
        for dirpath, dirnames, _ in os.walk(path):
            for name in dirnames:
                sub = os.path.join(dirpath, name)
                if not os.path.islink(sub):
                    os.chmod(sub, 0o700)
        os.chmod(path, 0o700)
        shutil.rmtree(path)
    else:
        os.unlink(path)


def swap_in(staging: str, folder: str) -> None:
    """Put ``staging`` at ``folder``; the old tree ends up at ``staging``."""
    parent = os.path.dirname(folder) or "."
    if not os.path.lexists(folder):
        os.rename(staging, folder)
    elif not exchange(staging, folder):
        aside = staging + ".old"
        os.rename(folder, aside)
        os.rename(staging, folder)
        os.rename(aside, staging)
    fsync_dir(parent)

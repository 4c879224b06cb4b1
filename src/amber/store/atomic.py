"""Atomic, durable file writes: temp file in the same folder, write, fsync, rename.

The temp file lives next to its final name so the rename never crosses a
filesystem; the folder is fsynced by the caller (once per batch) before
anything that names the file is committed. Batches of objects may skip the
per-file fsync and be made durable together by :func:`sync_filesystem`
(docs/decisions/0006-batched-durability.md).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
from collections.abc import Iterable

from amber import faults

_TMP_PREFIX = ".tmp-"


def write_atomic(
    path: str, parts: Iterable[bytes | bytearray | memoryview], *, mode: int = 0o444, durable: bool = True
) -> int:
    """Write ``parts`` to ``path`` atomically; return the bytes written.

    ``durable=False`` skips the per-file fsync: the caller makes a whole batch
    durable at once (:func:`sync_filesystem`) before anything names the files.
    """
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f"{_TMP_PREFIX}{name}.{os.getpid()}.{id(parts):x}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    written = 0
    try:
        for part in parts:
            faults.io_fault("write")
            view = memoryview(part)
            while view:
                n = os.write(fd, view)
                written += n
                view = view[n:]
        os.fchmod(fd, mode)
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return written


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def is_temp(name: str) -> bool:
    return name.startswith(_TMP_PREFIX)


_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_syncfs = getattr(_libc, "syncfs", None)


def sync_filesystem(path: str, files: Iterable[str]) -> bool:
    """Make every write to ``files`` durable: one syncfs(2) of the filesystem
    holding ``path`` where the kernel has it, else an fsync of each file.

    True when syncfs did it: that also made every directory entry on the
    filesystem durable, so no folder needs an fsync of its own.
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if _syncfs is not None and _syncfs(fd) == 0:
            return True
    finally:
        os.close(fd)
    for name in files:
        with contextlib.suppress(FileNotFoundError):
            file_fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(file_fd)
            finally:
                os.close(file_fd)
    return False

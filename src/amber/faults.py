"""Seams for the fault suite: named crash points and injected I/O errors.

Production code calls :func:`crash_point` at the moments where a crash is most
interesting (after objects are durable but before the catalog commits, between
the two halves of a swap, ...). Tests set ``AMBER_CRASH_AT=<name>`` (optionally
``<name>:<n>`` to die at the n-th pass) and the process kills itself with
SIGKILL there, exactly as ``kill -9`` would. ``AMBER_FAULT=<op>:<errno>[:<n>]``
makes the n-th ``op`` ("read" or "write") raise that errno (EIO, ENOSPC).
Both variables are read on every call so that tests can change them in-process.
"""

from __future__ import annotations

import errno
import os
import signal
import threading

_counts: dict[str, int] = {}
_lock = threading.Lock()

CRASH_POINTS = (
    "snapshot.objects_written",
    "snapshot.before_commit",
    "snapshot.after_commit",
    "restore.backup_done",
    "restore.staged",
    "restore.journaled",
    "restore.swapped",
    "restore.committed",
    "delete.committed",
    "delete.unlinking",
    "gc.committed",
    "alias.before_commit",
)


def _count(key: str) -> int:
    with _lock:
        _counts[key] = _counts.get(key, 0) + 1
        return _counts[key]


def crash_point(name: str) -> None:
    spec = os.environ.get("AMBER_CRASH_AT")
    if not spec:
        return
    target, _, nth = spec.partition(":")
    if target != name:
        return
    if _count("crash:" + name) >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def io_fault(op: str) -> None:
    """Raise the injected error for ``op`` if the test asked for one."""
    spec = os.environ.get("AMBER_FAULT")
    if not spec:
        return
    parts = spec.split(":")
    if parts[0] != op:
        return
    code = getattr(errno, parts[1])
    nth = int(parts[2]) if len(parts) > 2 else 1
    if _count("fault:" + op) >= nth:
        raise OSError(code, os.strerror(code))

"""Locks between Amber processes (flock on files under .amber/locks/).

* the store lock: shared by operations that add objects (snapshot, restore),
  exclusive for operations that remove them (delete, gc), so a chunk is never
  removed while another process is about to name it;
* one lock per model: held by snapshot and restore of that model, so a restore
  never swaps a folder another process is reading.

Order: model lock before store lock, always.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator

from amber.errors import Conflict

DEFAULT_TIMEOUT = 600.0


def _timeout() -> float:
    return float(os.environ.get("AMBER_LOCK_TIMEOUT", DEFAULT_TIMEOUT))


@contextlib.contextmanager
def hold(path: str, *, exclusive: bool, what: str, wait: bool = True) -> Iterator[None]:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        deadline = time.monotonic() + (_timeout() if wait else 0)
        while True:
            try:
                fcntl.flock(fd, mode)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise Conflict(
                        f"{what} is locked by another Amber process",
                        hint="wait for it to finish, then try again",
                    ) from None
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)


def store(amber: str, *, exclusive: bool) -> contextlib.AbstractContextManager[None]:
    return hold(os.path.join(amber, "locks", "store.lock"), exclusive=exclusive, what="the repository")


def model(amber: str, name: str, *, wait: bool = True) -> contextlib.AbstractContextManager[None]:
    return hold(os.path.join(amber, "locks", f"model-{name}.lock"), exclusive=True, what=f"model '{name}'", wait=wait)

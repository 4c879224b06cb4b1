"""The one clock: everything that stamps a time asks here, so tests can move it."""

from __future__ import annotations

import datetime as _dt
import time as _time
from collections.abc import Callable


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def now() -> _dt.datetime:
    return _now()


def now_ns() -> int:
    return _time.time_ns()


def set_clock(fn: Callable[[], _dt.datetime] | None) -> None:
    """Replace the clock (tests); ``None`` restores the real one."""
    global _now
    _now = fn or (lambda: _dt.datetime.now(_dt.UTC))


def iso(t: _dt.datetime) -> str:
    return t.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(s: str) -> _dt.datetime:
    return _dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=_dt.UTC)

"""Watch a model folder from outside and snapshot it once it has settled.

For trainers Amber cannot hook (DeepFaceLab saves every N minutes from its own
loop). Each poll is a stat walk of the folder, reduced to a fingerprint of every
entry's path, type, size, mode, mtime_ns, ctime_ns and inode. The watcher
snapshots (kind ``auto``) when all of these hold:

1. the fingerprint differs from the one the last snapshot was taken at (kept in
   the version's metadata as ``watch_fingerprint``, so a restarted watcher does not
   snapshot an untouched folder again);
2. it has not changed for ``settle`` seconds;
3. no other process holds a file under the folder open (``/proc``);
4. ``every`` seconds have passed since the last snapshot.

A snapshot taken while the writer started again is torn: the fingerprint after
it differs from the one before. Such a version is deleted at once and the folder
is snapshotted again after it settles; so every version kept is a state the
writer left for ``settle`` seconds. Iteration, losses and model type come from
the folder's own files (``amber.formats.detect``); the model's retention policy
(``keep``) is applied after each snapshot. A folder that disappears is reported
and polled until it returns. The first Ctrl-C or SIGTERM lets a running snapshot
finish and stops; a second Ctrl-C abandons it (nothing is half-written).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from amber.curation import retention_policy
from amber.errors import AmberError, InvalidInput, ModelNotFound
from amber.integrations.recorder import Recorder, RepoSpec
from amber.ops import inuse
from amber.types import Version

log = logging.getLogger("amber.watch")

FINGERPRINT_KEY = "watch_fingerprint"
RETRY_SECONDS = 5.0  # after a failed snapshot, wait at least this long before trying again
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds in ``"30s"``, ``"10m"``, ``"1h30m"``, ``"500ms"`` or a bare number of seconds."""
    cleaned = text.strip().lower()
    try:
        seconds = float(cleaned)
    except ValueError:
        parts = _DURATION.findall(cleaned)
        if not parts or "".join(n + u for n, u in parts) != cleaned:
            raise InvalidInput(f"'{text}' is not a duration; use e.g. 30s, 10m, 1h or 1h30m") from None
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds < 0 or seconds != seconds:
        raise InvalidInput(f"'{text}' is not a duration; use e.g. 30s, 10m, 1h or 1h30m")
    return seconds


def fingerprint(folder: str) -> str | None:
    """A digest of every entry's stat under ``folder``; None if the folder is not there."""
    digest = hashlib.blake2b(digest_size=16)
    try:
        top = os.stat(folder)
    except OSError:
        return None
    digest.update(f"{top.st_mode}".encode())
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue  # gone between listing and stat: the next poll sees the change
            rel = os.path.relpath(path, folder)
            digest.update(
                f"{rel}\0{st.st_mode}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_ino}\n".encode()
            )
    return digest.hexdigest()


@dataclass
class Summary:
    """What a watch did: versions kept, torn ones discarded, failures, and why it stopped."""

    versions: list[Version] = field(default_factory=list)
    discarded: int = 0
    failed: int = 0
    polls: int = 0
    seconds: float = 0.0
    stopped_by: str = ""  # "signal", "max-snapshots", "once"


class Watcher:
    """Polls ``path`` and snapshots it as versions of ``model`` when it has settled (see the module doc)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        model: str,
        repo: RepoSpec = None,
        every: float = 1800.0,
        settle: float = 10.0,
        keep: str | None = None,
        best_metric: str | None = None,
        mode: str = "min",
        poll: float | None = None,
        once: bool = False,
        max_snapshots: int | None = None,
        tags: Sequence[str] = (),
        report: Callable[[str], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if every < 0 or settle < 0:
            raise InvalidInput("--every and --settle must not be negative")
        if max_snapshots is not None and max_snapshots < 1:
            raise InvalidInput("--max-snapshots must be at least 1")
        self.folder = os.path.abspath(path)
        self.every, self.settle = every, settle
        self.poll = poll if poll is not None else min(1.0, max(0.05, settle / 4))
        self.once, self.max_snapshots = once, max_snapshots
        self.keep = str(retention_policy(keep)) if keep else None
        self.recorder = Recorder(model, repo=repo, kind="auto", tags=tags, retention=self.keep)
        if best_metric:
            self.recorder.follow(best_metric, mode)
        self.report = report or log.info
        self.clock = monotonic
        self.summary = Summary()
        self._stop = threading.Event()
        self._seen: str | None = None
        self._changed_at = 0.0
        self._snapped: str | None = None
        self._snapped_at: float | None = None
        self._retry_at = 0.0
        self._missing = False
        self._held: list[int] = []
        self._prepared = False

    @property
    def model(self) -> str:
        return self.recorder.model

    def stop(self) -> None:
        """Stop after the current poll (or snapshot); safe from a signal handler or another thread."""
        self._stop.set()

    def run(self, *, handle_signals: bool = True) -> Summary:
        """Watch until stopped (Ctrl-C, SIGTERM, :meth:`stop`), ``once``, or ``max_snapshots``."""
        start = self.clock()
        if not self._prepared:
            self.prepare()
        with self._signals(handle_signals):
            while not self._stop.is_set():
                self.step()
                if self.summary.stopped_by:
                    break
                self._stop.wait(self.poll)
        self.summary.stopped_by = self.summary.stopped_by or "signal"
        self.summary.seconds = self.clock() - start
        return self.summary

    def prepare(self) -> None:
        """Check the rules and read the fingerprint of the model's latest version."""
        self._seen, self._changed_at = fingerprint(self.folder), self.clock()  # settling starts now
        with self.recorder.open() as repo:
            try:
                latest = repo.versions(self.model)
                settings = repo.model_settings(self.model)
            except ModelNotFound:
                latest, settings = [], None
        has_metric = self.recorder.best_metric or (settings and settings.best_metric)
        if self.keep and retention_policy(self.keep).keep_best and not has_metric:
            raise InvalidInput("keep-best needs a best metric", hint="add --best-metric NAME (e.g. loss_dst)")
        ours = [v for v in latest if v.kind != "backup"]
        if ours and isinstance(ours[0].metadata.get(FINGERPRINT_KEY), str):
            self._snapped = ours[0].metadata[FINGERPRINT_KEY]
        self._prepared = True

    def step(self) -> Version | None:
        """One poll: look at the folder, and snapshot it if it is due. Returns the version kept, if any."""
        self.summary.polls += 1
        now = self.clock()
        current = fingerprint(self.folder)
        if current is None:
            if not self._missing:
                self.report(f"'{self.folder}' is not there; still watching")
            self._missing, self._seen = True, None  # when it returns, it must settle again
            return None
        if self._missing:
            self.report(f"'{self.folder}' is back")
            self._missing = False
        if current != self._seen:
            self._seen, self._changed_at = current, now
        if current == self._snapped:
            if self.once:
                self.summary.stopped_by = "once"
                self.report("no change since the last snapshot")
            return None
        if now - self._changed_at < self.settle or now < self._retry_at:
            return None
        if self._snapped_at is not None and now - self._snapped_at < self.every:
            return None
        if self._in_use():
            return None
        return self._take(current)

    def _in_use(self) -> bool:
        held = inuse.holders(self.folder)
        pids = sorted(pid for pid, _, _ in held)
        if pids and pids != self._held:
            pid, command, path = held[0]
            self.report(f"waiting: process {pid} ({command}) has '{os.path.relpath(path, self.folder)}' open")
        self._held = pids
        return bool(pids)

    def _take(self, before: str) -> Version | None:
        errors = len(self.recorder.errors)
        version = self.recorder.record(self.folder, metadata={FINGERPRINT_KEY: before})
        if version is None:
            self.summary.failed += 1
            self._retry_at = self.clock() + max(self.settle, RETRY_SECONDS)
            failure = self.recorder.errors[errors] if len(self.recorder.errors) > errors else None
            self.report(f"snapshot failed: {failure.message if failure else 'unknown error'}; will retry")
            return None
        if fingerprint(self.folder) != before:
            self._discard(version)
            return None
        self._snapped, self._snapped_at = before, self.clock()
        self.summary.versions.append(version)
        self.report(describe(version, self.recorder.seconds[-1]))
        if self.once:
            self.summary.stopped_by = "once"
        elif self.max_snapshots is not None and len(self.summary.versions) >= self.max_snapshots:
            self.summary.stopped_by = "max-snapshots"
        return version

    def _discard(self, version: Version) -> None:
        self.summary.discarded += 1
        try:
            with self.recorder.open() as repo:
                repo.delete(version.id, force=True)
        except AmberError as exc:
            self.report(f"{version.ref} may hold a half-written state and could not be deleted: {exc.message}")
            return
        self.report(f"the folder changed during the snapshot; discarded {version.ref}, will take it again")

    @contextmanager
    def _signals(self, enabled: bool) -> Iterator[None]:
        if not enabled or threading.current_thread() is not threading.main_thread():
            yield
            return

        def first(signum: int, frame: FrameType | None) -> None:
            if self._stop.is_set() and signum == signal.SIGINT:
                raise KeyboardInterrupt  # the second Ctrl-C: abandon the running snapshot
            self.report("stopping (Ctrl-C again to abandon a running snapshot)")
            self.stop()

        previous: dict[int, Any] = {s: signal.signal(s, first) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def describe(version: Version, seconds: float) -> str:
    """One line for a kept version: ref, iteration, metrics, time taken."""
    parts = [version.ref]
    if version.iteration is not None:
        parts.append(f"iteration {version.iteration}")
    parts += [f"{k}={v:.4g}" for k, v in version.metrics.items()]
    return "snapshot " + "  ".join(parts) + f"  ({seconds:.2f} s)"


def watch(path: str | os.PathLike[str], *, model: str, **options: Any) -> Summary:
    """Watch ``path`` until Ctrl-C; shorthand for ``Watcher(path, model=model, **options).run()``."""
    return Watcher(path, model=model, **options).run()

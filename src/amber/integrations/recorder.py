"""What every training callback shares: open the repository, snapshot, time the pause.

A callback hands the recorder a checkpoint that is already on disk; the recorder
snapshots it as one version (one catalog transaction, so a crash or Ctrl-C later
in training never touches it), sets the model's best metric and retention policy
once, and remembers how long training waited.

In the background mode a snapshot runs on one worker thread while training goes
on. The callback must call :meth:`Recorder.wait` before anything changes the
checkpoint being read (the next save, a checkpoint rotation, the end of
training); the time training spends there counts toward that save's pause.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from amber.curation import MODES, retention_policy
from amber.errors import AmberError, ModelNotFound
from amber.ids import check_name
from amber.repo import Repo
from amber.types import Version

log = logging.getLogger("amber.integrations")

RepoSpec = Repo | str | os.PathLike[str] | None


class Recorded:
    """What every callback shows of its recorder: the pauses and the versions made."""

    recorder: Recorder

    @property
    def pauses(self) -> list[float]:
        return self.recorder.pauses

    @property
    def versions(self) -> list[Version]:
        return self.recorder.versions


class Recorder:
    """Snapshots checkpoints of one model into one repository, timing each pause.

    ``repo`` is a :class:`~amber.Repo` (used as is and never closed, except from the
    background thread, which opens its own), a path, or None (``$AMBER_REPO``, else
    ``.amber/`` found upward from the working folder); a path is opened for each
    snapshot and closed right after.

    ``pauses``: seconds training waited per save. ``seconds``: how long each
    snapshot took (equal to the pauses unless in the background).
    """

    def __init__(
        self,
        model: str,
        *,
        repo: RepoSpec = None,
        kind: str = "callback",
        tags: Sequence[str] = (),
        retention: str | None = None,
        background: bool = False,
    ) -> None:
        self.model = check_name(model)
        self.repo = repo
        self.kind = kind
        self.tags = list(tags)
        self.retention = str(retention_policy(retention)) if retention else None
        self.background = background
        self.best_metric: str | None = None
        self.mode: str | None = None
        self.pauses: list[float] = []
        self.seconds: list[float] = []
        self.versions: list[Version] = []
        self.errors: list[AmberError] = []
        self._configured = False
        self._owner = threading.get_ident()
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future[Version | None] | None = None

    def follow(self, best_metric: str | None, mode: str) -> None:
        """Let the model's ``best`` alias follow ``best_metric`` (``mode`` "min" or "max")."""
        if mode not in MODES:
            raise ValueError(f"mode must be 'min' or 'max', not '{mode}'")
        self.best_metric, self.mode = best_metric, mode
        self._configured = False

    @contextmanager
    def open(self) -> Iterator[Repo]:
        """The repository: the one given (on its own thread), or opened now and closed on leaving."""
        if isinstance(self.repo, Repo) and threading.get_ident() == self._owner:
            yield self.repo
            return
        with Repo(self.repo.root if isinstance(self.repo, Repo) else self.repo) as repo:
            yield repo

    def snapshot(self, path: str, **info: Any) -> None:
        """Snapshot ``path`` now, or hand it to the background thread; either way time the pause."""
        start = time.perf_counter()
        if not self.background:
            self.record(path, **info)
        else:
            self.wait()
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="amber-snapshot")
            self._pending = self._pool.submit(self.record, path, **info)
        self.pauses.append(time.perf_counter() - start)

    def wait(self) -> None:
        """Block until the background snapshot (if any) is committed; the wait counts toward its pause."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        start = time.perf_counter()
        try:
            pending.result()
        finally:
            if self.pauses:
                self.pauses[-1] += time.perf_counter() - start

    def close(self) -> None:
        """Wait for the background snapshot and stop the thread."""
        self.wait()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def record(
        self,
        path: str,
        *,
        name: str | None = None,
        iteration: int | None = None,
        metrics: Mapping[str, float] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Version | None:
        """Snapshot ``path``; None (and the error kept in ``errors``) if Amber refused."""
        start = time.perf_counter()
        version = None
        try:
            with self.open() as repo:
                if not self._configured:
                    self._configure(repo, before=True)
                version = repo.snapshot(
                    path, model=self.model, name=name, iteration=iteration, metrics=dict(metrics or {}),
                    tags=self.tags, metadata=dict(metadata or {}), kind=self.kind,
                )  # fmt: skip
                if not self._configured:
                    self._configure(repo, before=False)
        except AmberError as exc:
            self.errors.append(exc)
            log.error("amber: could not snapshot '%s' as a version of %s: %s", path, self.model, exc.message)
        took = time.perf_counter() - start
        self.seconds.append(took)
        if version is not None:
            self.versions.append(version)
            log.info("amber: %s (step %s) took %.3f s", version.ref, version.iteration, took)
        return version

    def _configure(self, repo: Repo, *, before: bool) -> None:
        """Set the model's best metric, mode and retention: before the first snapshot if the model exists."""
        if self.best_metric is None and self.retention is None:
            self._configured = True
            return
        try:
            repo.set_model(self.model, best_metric=self.best_metric, mode=self.mode, retention=self.retention)
            if not before and self.retention:
                repo.gc(self.retention, model=self.model, dry_run=False)
        except ModelNotFound:
            if not before:
                raise
            return  # a new model: set once its first version exists
        except AmberError as exc:  # a bad rule must not cost the snapshot; say so once
            self.errors.append(exc)
            log.error("amber: could not set the rules of model %s: %s", self.model, exc.message)
        self._configured = True


def numbers(values: Mapping[str, Any]) -> dict[str, float]:
    """The finite numbers among ``values`` (tensors of one element included), as floats."""
    out: dict[str, float] = {}
    for key, value in values.items():
        if hasattr(value, "numel") and hasattr(value, "item"):
            if value.numel() != 1:
                continue
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value):
            out[str(key)] = float(value)
    return out


def plain(values: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-plain scalars among ``values`` (str, int, finite float, bool, None)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            continue
        if value is None or isinstance(value, (str, int, float, bool)):
            out[str(key)] = value
    return out

"""The repository: the one facade every front end calls.

Opening a repository and reading its catalog imports only what that needs: the
operations that write, restore, compare or verify are imported by the method
that runs them, so a short command (``amber list``) starts fast.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import json
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from amber import formats
from amber.catalog import aliases as alias_rules
from amber.catalog import queries
from amber.catalog.db import Catalog
from amber.curation import Curation
from amber.errors import (
    AmberError,
    AmbiguousRef,
    InvalidInput,
    ModelNotFound,
    RepoExists,
    RepoNotFound,
    StorageError,
    VersionNotFound,
)
from amber.ids import VersionRef, check_name
from amber.ops import labels, locks, manifest
from amber.ops.context import Context
from amber.ops.scan import AMBER_DIR, check_source
from amber.progress import NullProgress, Progress
from amber.types import DeleteResult, Model, Report, RestoreResult, Usage, Version

if TYPE_CHECKING:
    from amber.ops.diff import Diff

FORMAT_VERSION = 1
JOURNAL = "journal"  # .amber/journal/: restores a crash may have cut in half (amber.ops.swap)


def find_root(start: str | os.PathLike[str] | None = None) -> str:
    """The folder holding ``.amber/``: $AMBER_REPO, or walking up from ``start``."""
    if start is None and os.environ.get("AMBER_REPO"):
        start = os.environ["AMBER_REPO"]
    here = os.path.abspath(start or os.getcwd())
    probe = here
    while True:
        if os.path.isdir(os.path.join(probe, AMBER_DIR)):
            return probe
        parent = os.path.dirname(probe)
        if parent == probe:
            raise RepoNotFound(here)
        probe = parent


@contextlib.contextmanager
def _disk(what: str, ctx: Context | None = None) -> Iterator[None]:
    """Turn a raw OSError from the disk into one clear StorageError.

    With ``ctx`` (an operation that writes objects), a failure also removes
    the objects it wrote, when no other Amber process is at work.
    """
    try:
        yield
    except BaseException as exc:
        if ctx is not None:
            from amber.ops import delete as delete_op

            delete_op.sweep_if_idle(ctx)
        if isinstance(exc, OSError) and not isinstance(exc, AmberError):
            raise _storage_error(exc, what) from None
        raise


def _storage_error(exc: OSError, what: str) -> StorageError:
    if exc.errno == errno.ENOSPC:
        message = f"no space left on the device while {what}; nothing was changed"
        hint = "free some space (or 'amber delete' old versions) and try again"
    else:
        message = f"{what} failed: {exc.strerror or exc} ({exc.filename or 'I/O'}); nothing was changed"
        hint = "check the disk, then run 'amber verify'"
    return StorageError(message, hint=hint)


class Repo(Curation):
    """An Amber repository. ``Repo()`` finds ``.amber/`` upward from the working directory."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, progress: Progress | None = None) -> None:
        self.root = find_root(path)
        amber = os.path.join(self.root, AMBER_DIR)
        from amber.store.objects import ObjectStore

        self._ctx = Context(
            root=self.root,
            amber=amber,
            store=ObjectStore(os.path.join(amber, "objects")),
            catalog=Catalog(os.path.join(amber, "catalog.db")),
            progress=progress or NullProgress(),
        )
        if _any_entry(os.path.join(amber, JOURNAL)):  # the restore machinery loads only when needed
            from amber.ops import restore as restore_op

            restore_op.recover(self._ctx)

    @classmethod
    def init(cls, path: str | os.PathLike[str] = ".") -> Repo:
        root = os.path.abspath(path)
        amber = os.path.join(root, AMBER_DIR)
        if os.path.exists(amber):
            raise RepoExists(root)
        os.makedirs(root, exist_ok=True)
        tmp = os.path.join(root, f".amber-init-{os.getpid()}")
        os.makedirs(os.path.join(tmp, "objects"))
        os.makedirs(os.path.join(tmp, "locks"))
        os.makedirs(os.path.join(tmp, JOURNAL))
        with open(os.path.join(tmp, "config.json"), "w") as fh:
            fh.write(json.dumps({"format": FORMAT_VERSION}) + "\n")
        Catalog(os.path.join(tmp, "catalog.db")).close()
        os.rename(tmp, amber)
        return cls(root)

    @property
    def path(self) -> str:
        return self.root

    def close(self) -> None:
        self._ctx.catalog.close()

    def __enter__(self) -> Repo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_progress(self, progress: Progress | None) -> None:
        self._ctx.progress = progress or NullProgress()

    # ---- reading -------------------------------------------------------------------------

    def models(self) -> list[Model]:
        return queries.models(self._ctx.catalog)

    def versions(self, model: str | None = None) -> list[Version]:
        """Every version, newest first (of one model if given)."""
        if model is not None:
            self._model_row(model)
        return queries.versions(self._ctx.catalog, model)

    def du(self, model: str | None = None) -> Usage:
        """Logical and stored bytes of one model's versions, or of the whole repository."""
        if model is not None:
            self._model_row(model)
        return Usage(model, *queries.usage(self._ctx.catalog, model))

    def get(self, ref: str, *, files: bool = False) -> Version:
        version = self._resolve(ref)
        if files:
            _root, entries = manifest.decode(self._ctx.store.get(version.manifest))  # as restore.load_manifest
            version = _with_files(version, entries)
        return version

    def diff(self, a: str, b: str) -> Diff:
        """What changed from version ``a`` to version ``b``: fields, files, tensors."""
        from amber.ops import diff as diff_op

        return diff_op.diff(self._ctx, self._resolve(a), self._resolve(b))

    def usage(self, ref: str) -> list[dict[str, Any]]:
        return queries.events(self._ctx.catalog, self._resolve(ref).id)

    def _model_row(self, name: str) -> Any:
        row = queries.model_row(self._ctx.catalog, name)
        if row is None:
            raise ModelNotFound(name, queries.model_names(self._ctx.catalog))
        return row

    def _resolve(self, text: str) -> Version:
        ref = VersionRef.parse(text)
        cat = self._ctx.catalog
        if ref.prefix is not None:
            found = queries.version_rows(cat, "v.id LIKE ?", [ref.prefix + "%"])
            if len(found) > 1:
                raise AmbiguousRef(text, [f"{v.ref} ({v.short_id()})" for v in found[:10]])
            if found:
                return found[0]
            if queries.model_row(cat, text) is not None:
                return self._resolve(f"{text}:latest")
            raise VersionNotFound(text, self._close_matches(text))
        if ref.model is None:
            names = queries.model_names(cat)
            if len(names) > 1:
                raise AmbiguousRef(text, [f"{n}:{text}" for n in names])
            if not names:
                raise VersionNotFound(text)
            return self._resolve(f"{names[0]}:{text}")
        row = queries.model_row(cat, ref.model)
        if row is None:
            raise VersionNotFound(text, self._close_matches(text))
        if ref.number is not None:
            found = queries.version_rows(cat, "v.model_id = ? AND v.number = ?", [row["id"], ref.number])
        else:
            target = alias_rules.target(cat, row["id"], ref.alias or "latest")
            found = queries.version_rows(cat, "v.id = ?", [target]) if target else []
        if not found:
            raise VersionNotFound(text, self._close_matches(text))
        return found[0]

    def _close_matches(self, text: str) -> list[str]:
        refs = [v.ref for v in queries.versions(self._ctx.catalog)]
        refs += [f"{m}:latest" for m in queries.model_names(self._ctx.catalog)]
        return difflib.get_close_matches(text, refs, n=3, cutoff=0.5)

    # ---- writing -------------------------------------------------------------------------

    def snapshot(
        self,
        path: str | os.PathLike[str],
        *,
        model: str | None = None,
        name: str | None = None,
        notes: str = "",
        iteration: int | None = None,
        metrics: dict[str, float] | None = None,
        tags: Sequence[str] | None = None,
        metadata: dict[str, Any] | None = None,
        model_type: str | None = None,
        kind: str = "manual",
        select: str | None = None,
    ) -> Version:
        """Record the folder (or file) at ``path`` as a new version of ``model``.

        ``select`` picks one DeepFaceLab model of a folder holding several (a
        glob such as ``"new_SAEHD_*"``, or a model prefix); later restores of
        the model then replace exactly that model's files.
        """
        from amber.ops import record
        from amber.ops.snapshot import VersionInfo, capture

        source = check_source(os.fspath(path), self.root)
        select = select or self._stored_select(model)
        found = formats.detect(source, select=select)
        model = check_name(model or _default_name(source, select))
        _check_selection(source, path, found, select)
        info = VersionInfo(
            label=name or "",
            kind=kind,
            iteration=iteration if iteration is not None else found.iteration,
            metrics={**found.metrics, **(metrics or {})},
            notes=notes,
            model_type=model_type or found.model_type or "generic",
            tags=list(tags or []),
            metadata={**found.metadata, **(metadata or {})},
        )
        info.check()
        ctx = self._ctx
        shared = locks.store(ctx.amber, exclusive=False)
        with _disk(f"snapshotting '{path}'", ctx), locks.model(ctx.amber, model), shared:
            row = queries.model_row(ctx.catalog, model)
            model_id = row["id"] if row is not None else None
            try:
                cap = capture(ctx, source, model_id, select)
                vid = record.commit(ctx, cap, model=model, folder=source, info=info)
            except record.StaleCache as stale:
                record.drop_stat_cache(ctx, stale.model_id)
                cap = capture(ctx, source, stale.model_id, select)
                vid = record.commit(ctx, cap, model=model, folder=source, info=info)
            if select:
                labels.update_settings(ctx, self._model_row(model)["id"], {"select": select})
        if kind != "backup":
            self._apply_retention(model)
        return self._resolve(vid)

    def _stored_select(self, model: str | None) -> str | None:
        row = queries.model_row(self._ctx.catalog, model) if model else None
        return alias_rules.settings(self._ctx.catalog, row["id"]).get("select") if row is not None else None

    def model_folder(self, model: str) -> str:
        row = self._model_row(model)
        if not row["path"]:
            raise InvalidInput(f"model '{model}' has no folder on this machine", hint="use 'amber export' instead")
        return os.path.normpath(os.path.join(self.root, row["path"]))

    def restore(self, ref: str, *, force: bool = False) -> RestoreResult:
        """Make the model's folder equal version ``ref``, backing up the current state first."""
        from amber.ops import restore as restore_op

        version = self._resolve(ref)
        folder = self.model_folder(version.model)
        select = self._stored_select(version.model)
        with _disk(f"restoring {version.ref}", self._ctx):
            backup_id, equal_id = restore_op.restore(self._ctx, version, folder, force=force, select=select)
        backup = self._resolve(backup_id) if backup_id else None
        equal = self._resolve(equal_id) if equal_id else None
        return RestoreResult(version=self._resolve(version.id), backup=backup, equal_to=equal, path=folder)

    def delete(self, ref: str, *, force: bool = False) -> DeleteResult:
        """Delete version ``ref`` and every chunk no other version needs."""
        from amber.ops import delete as delete_op

        version = self._resolve(ref)
        self._check_protected(version, force)
        with _disk(f"deleting {version.ref}"):
            freed, removed = delete_op.delete_versions(self._ctx, [version.id])
        return DeleteResult(version=version, freed_bytes=freed, chunks_removed=removed)

    def export(self, ref: str, dest: str | os.PathLike[str]) -> str:
        """Write version ``ref`` to ``dest`` (which must not exist); the model folder is untouched."""
        from amber.ops.materialize import materialize_new
        from amber.ops.restore import load_manifest

        version = self._resolve(ref)
        target = os.path.abspath(dest)
        if os.path.lexists(target):
            raise InvalidInput(f"'{dest}' already exists; export writes a new folder")
        if not os.path.isdir(os.path.dirname(target)):
            raise InvalidInput(f"the folder '{os.path.dirname(dest) or '.'}' does not exist")
        with _disk(f"exporting {version.ref}"):
            root, entries = load_manifest(self._ctx, version)
            materialize_new(self._ctx, root, entries, target, "export")
        labels.record_use(self._ctx, version, "export", target)
        return target

    def verify(self, *, data: bool = False) -> Report:
        """Check the catalog, every manifest and every chunk file (``data``: re-hash every chunk)."""
        from amber.ops import verify as verify_op

        with locks.store(self._ctx.amber, exclusive=False):
            return verify_op.verify(self._ctx, data=data)


def _any_entry(folder: str) -> bool:
    """True if ``folder`` exists and holds anything."""
    try:
        with os.scandir(folder) as entries:
            return any(True for _ in entries)
    except (FileNotFoundError, NotADirectoryError):
        return False


def _default_name(source: str, select: str | None) -> str:
    """The folder's name, or with a DeepFaceLab selection, the selected model's prefix."""
    if select:
        picked = formats.dfl_files(source, select)
        owners = {p for p in formats.dfl_models(source) if picked and all(f.startswith(p + "_") for f in picked)}
        if len(owners) == 1:
            return owners.pop()
    return os.path.basename(source.rstrip(os.sep))


def _check_selection(source: str, shown: str | os.PathLike[str], found: Any, select: str | None) -> None:
    present = found.metadata.get("dfl_models") or []
    if select is None and found.model_type is None and len(present) > 1:
        raise InvalidInput(
            f"'{shown}' holds {len(present)} DeepFaceLab models ({', '.join(present)}); Amber versions one at a time",
            hint=f"choose one with --select, e.g. --select '{present[-1]}_*'",
        )
    if select is not None and os.path.isdir(source) and not formats.dfl_files(source, select):
        raise InvalidInput(f"--select '{select}' matches no file in '{shown}'")


def _with_files(version: Version, entries: Sequence[Any]) -> Version:
    from dataclasses import replace

    return replace(version, files=tuple(entries))

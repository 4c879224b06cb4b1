"""Amber: version trained models — snapshot, list, restore, delete, compare."""

from __future__ import annotations

from amber.errors import AmberError
from amber.repo import Repo
from amber.types import DeleteResult, FileEntry, Model, RestoreResult, Usage, Version

__version__ = "0.1.0"


def path(ref: str, used_by: str | None = None, *, repo: str | None = None) -> str:
    """A local folder holding version ``ref``, for ``from_pretrained`` and friends.

    The version is materialised once into the repository's cache and reused;
    each call is recorded as a use of the version (``used_by`` names who).
    """
    with Repo(repo) as r:
        return r.local_path(ref, used_by=used_by)


__all__ = [
    "AmberError",
    "DeleteResult",
    "FileEntry",
    "Model",
    "Repo",
    "RestoreResult",
    "Usage",
    "Version",
    "__version__",
    "path",
]

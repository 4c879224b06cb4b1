"""Amber: version trained models — snapshot, list, restore, delete, compare."""

from __future__ import annotations

from amber.errors import AmberError
from amber.repo import Repo
from amber.types import DeleteResult, FileEntry, Model, RestoreResult, Usage, Version

__version__ = "0.1.0"

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
]

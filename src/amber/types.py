"""Frozen dataclasses the public API returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KINDS = ("manual", "backup", "auto", "callback")


@dataclass(frozen=True)
class FileEntry:
    """One entry of a version's manifest.

    ``type`` is "file", "dir" or "symlink". ``chunks`` lists (object id hex,
    raw size) in file order; ``target`` is set for symlinks only.
    """

    path: str
    type: str
    mode: int
    size: int = 0
    chunks: tuple[tuple[str, int], ...] = ()
    target: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "mode": self.mode, "type": self.type}


@dataclass(frozen=True)
class Version:
    id: str
    model: str
    number: int
    label: str
    kind: str
    created_at: str
    iteration: int | None
    metrics: dict[str, float]
    notes: str
    model_type: str | None
    tags: list[str]
    metadata: dict[str, Any]
    parent: str | None
    aliases: list[str]
    size_bytes: int
    stored_bytes: int
    unique_bytes: int
    manifest: str
    file_count: int
    files: tuple[FileEntry, ...] | None = field(default=None, compare=False)

    @property
    def ref(self) -> str:
        return f"{self.model}:v{self.number}"

    def short_id(self) -> str:
        return self.id[:12]

    def to_json(self, *, with_files: bool = False) -> dict[str, Any]:
        """The stable JSON form documented in docs/cli.md."""
        out: dict[str, Any] = {
            "id": self.id,
            "model": self.model,
            "number": self.number,
            "ref": self.ref,
            "label": self.label,
            "kind": self.kind,
            "created_at": self.created_at,
            "iteration": self.iteration,
            "metrics": dict(self.metrics),
            "notes": self.notes,
            "model_type": self.model_type,
            "tags": list(self.tags),
            "metadata": dict(self.metadata),
            "parent": self.parent,
            "aliases": list(self.aliases),
            "size_bytes": self.size_bytes,
            "stored_bytes": self.stored_bytes,
            "unique_bytes": self.unique_bytes,
        }
        if with_files and self.files is not None:
            out["files"] = [f.to_json() for f in self.files]
        return out


@dataclass(frozen=True)
class Model:
    name: str
    path: str | None
    model_type: str | None
    head: str | None
    version_count: int


@dataclass(frozen=True)
class Usage:
    """Disk use of a model (or, with ``model`` None, the whole repository)."""

    model: str | None
    versions: int
    logical_bytes: int
    stored_bytes: int

    @property
    def ratio(self) -> float:
        return self.stored_bytes / self.logical_bytes if self.logical_bytes else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "versions": self.versions,
            "logical_bytes": self.logical_bytes,
            "stored_bytes": self.stored_bytes,
            "ratio": round(self.ratio, 4),
        }


@dataclass(frozen=True)
class DeleteResult:
    version: Version
    freed_bytes: int
    chunks_removed: int


@dataclass(frozen=True)
class RestoreResult:
    version: Version
    backup: Version | None
    equal_to: Version | None
    path: str


@dataclass
class Problem:
    kind: str  # "catalog", "manifest", "missing", "damaged", "size"
    object: str
    message: str
    versions: list[str] = field(default_factory=list)


@dataclass
class Report:
    versions: int = 0
    chunks: int = 0
    bytes_checked: int = 0
    orphans: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

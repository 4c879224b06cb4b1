"""Manifests: the canonical list of a version's files, and its strict parser.

A manifest is JSON, canonical (sorted keys, no spaces), stored as an object in
the store; its BLAKE3 is the version's content identity. Two folders with the
same files, modes and links have the same manifest id.

The parser trusts nothing: a manifest may come from a damaged disk or a hostile
remote. It rejects absolute paths, ``..``/``.``/empty components, duplicate
paths, entries below a symlink, links that leave the folder, negative or huge
sizes, chunk lists that do not add up, and unknown fields or types.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Sequence
from typing import Any

from amber.errors import InvalidInput
from amber.types import FileEntry

FORMAT = 1
MAX_ENTRIES = 5_000_000
MAX_FILE_SIZE = 1 << 50
MAX_PATH = 4096
_OID = re.compile(r"^[0-9a-f]{64}\Z")
_TYPES = ("file", "dir", "symlink")


def encode(root: str, entries: Sequence[FileEntry]) -> bytes:
    doc = {"format": FORMAT, "root": root, "entries": [_entry_json(e) for e in entries]}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _entry_json(e: FileEntry) -> dict[str, Any]:
    out: dict[str, Any] = {"path": e.path, "type": e.type, "mode": e.mode}
    if e.type == "file":
        out["size"] = e.size
        out["chunks"] = [[oid, size] for oid, size in e.chunks]
    elif e.type == "symlink":
        out["target"] = e.target
    return out


def decode(data: bytes | bytearray) -> tuple[str, list[FileEntry]]:
    """(root kind, entries) of a manifest, or InvalidInput naming what is wrong."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"manifest is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidInput("manifest is nested too deeply to be a manifest") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InvalidInput("manifest has an unknown format")
    root, raw = doc.get("root"), doc.get("entries")
    if root not in ("dir", "file") or not isinstance(raw, list) or len(raw) > MAX_ENTRIES:
        raise InvalidInput("manifest has a bad root kind or entry list")
    entries = [_parse_entry(item) for item in raw]
    check_tree(root, entries)
    return root, entries


def _parse_entry(item: object) -> FileEntry:
    if not isinstance(item, dict):
        raise InvalidInput("manifest entry is not an object")
    path, kind, mode = item.get("path"), item.get("type"), item.get("mode")
    if not isinstance(path, str) or kind not in _TYPES or not isinstance(mode, int) or isinstance(mode, bool):
        raise InvalidInput(f"manifest entry {str(path)[:80]!r} has a bad path, type or mode")
    if not 0 <= mode <= 0o7777:
        raise InvalidInput(f"manifest entry {path[:80]!r} has an impossible mode {mode}")
    check_path(path)
    allowed = {"path", "type", "mode"} | {"file": {"size", "chunks"}, "symlink": {"target"}, "dir": set()}[kind]
    if set(item) - allowed:
        raise InvalidInput(f"manifest entry '{path}' has unknown fields {sorted(set(item) - allowed)}")
    if kind == "file":
        return FileEntry(path, kind, mode, _size(item.get("size"), path), _chunks(item.get("chunks"), path))
    if kind == "symlink":
        target = item.get("target")
        if not isinstance(target, str):
            raise InvalidInput(f"manifest symlink '{path}' has no target")
        check_link(path, target)
        return FileEntry(path, kind, mode, target=target)
    return FileEntry(path, kind, mode)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _size(value: object, path: str) -> int:
    if not _is_int(value) or not 0 <= value <= MAX_FILE_SIZE:  # type: ignore[operator]
        raise InvalidInput(f"manifest file '{path}' has an impossible size {value!r}")
    return value  # type: ignore[return-value]


def _chunks(value: object, path: str) -> tuple[tuple[str, int], ...]:
    if not isinstance(value, list):
        raise InvalidInput(f"manifest file '{path}' has no chunk list")
    out = []
    for item in value:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or not isinstance(item[0], str)
            or not _OID.match(item[0])
            or not _is_int(item[1])
            or not 0 < item[1] <= 64 << 20
        ):
            raise InvalidInput(f"manifest file '{path}' has a malformed chunk {str(item)[:100]}")
        out.append((item[0], item[1]))
    return tuple(out)


def check_path(path: str) -> None:
    """A relative POSIX path with no '.', '..' or empty parts, no NUL."""
    try:
        encoded = path.encode("utf-8", "surrogateescape")  # names that are not UTF-8 arrive escaped
    except UnicodeEncodeError:
        raise InvalidInput(f"manifest path {path[:200]!r} is not a file name") from None
    if (
        not path
        or len(encoded) > MAX_PATH
        or path.startswith("/")
        or "\0" in path
        or any(part in ("", ".", "..") for part in path.split("/"))
    ):
        raise InvalidInput(f"manifest path {path[:200]!r} is not a safe relative path")


def check_link(path: str, target: str, links: dict[str, str] | None = None) -> None:
    """A symlink's target must be relative and stay inside the folder.

    ``links`` (every symlink of the folder, path -> target) lets the check
    follow the links the target passes through, as the kernel would: ``a ->
    b/..`` escapes when ``b -> .``, though ``b/..`` alone looks harmless.
    """
    if not target or target.startswith("/") or "\0" in target or _escapes(path, target, links or {}):
        raise InvalidInput(f"symlink '{path}' points outside the folder ('{target}')")


def _escapes(path: str, target: str, links: dict[str, str]) -> bool:
    stack = path.split("/")[:-1]
    parts = target.split("/")
    hops = 0
    while parts:
        part = parts.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not stack:
                return True
            stack.pop()
            continue
        stack.append(part)
        through = links.get("/".join(stack))
        if through is not None and parts:  # a link in the middle of the path: follow it
            hops += 1
            if hops > 40 or through.startswith("/"):
                return True
            stack.pop()
            parts = through.split("/") + parts
    return False


def check_tree(root: str, entries: Sequence[FileEntry]) -> None:
    """No duplicates; every parent is a dir entry, never a symlink; sizes add up."""
    kinds: dict[str, str] = {}
    for e in entries:
        if e.path in kinds:
            raise InvalidInput(f"manifest lists '{e.path}' twice")
        kinds[e.path] = e.type
    links = {e.path: e.target or "" for e in entries if e.type == "symlink"}
    for link, target in links.items():
        check_link(link, target, links)
    for e in entries:
        parent = posixpath.dirname(e.path)
        if parent and kinds.get(parent) != "dir":
            raise InvalidInput(f"manifest entry '{e.path}' is not inside a listed folder")
        if e.type == "file" and sum(size for _, size in e.chunks) != e.size:
            raise InvalidInput(f"manifest file '{e.path}' chunks do not add up to its size")
    if root == "file" and (len(entries) != 1 or entries[0].type != "file" or "/" in entries[0].path):
        raise InvalidInput("a single-file manifest must hold exactly one file")

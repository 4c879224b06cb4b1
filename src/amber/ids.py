"""Identifiers: object ids (BLAKE3 of raw bytes) and version references."""

from __future__ import annotations

import re
from dataclasses import dataclass

import blake3

from amber.errors import InvalidInput

_HEX = re.compile(r"^[0-9a-f]{64}\Z")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
_NUMBER = re.compile(r"^v(\d{1,9})\Z")
_PREFIX = re.compile(r"^[0-9a-f]{4,64}\Z")


@dataclass(frozen=True, order=True)
class ObjectId:
    """The BLAKE3 hash of an object's raw bytes, as 64 lowercase hex digits."""

    hex: str

    def __post_init__(self) -> None:
        if not _HEX.match(self.hex):
            raise InvalidInput(f"'{self.hex[:80]}' is not an object id (64 hex digits)")

    @classmethod
    def of(cls, data: bytes | bytearray | memoryview) -> ObjectId:
        return cls(blake3.blake3(data).hexdigest())

    def short(self) -> str:
        return self.hex[:12]

    def __str__(self) -> str:
        return self.hex


def check_name(name: str, what: str = "model name") -> str:
    """A model or alias name: letters, digits, '.', '_' and '-', no spaces or slashes."""
    if not _NAME.match(name) or _NUMBER.match(name):
        raise InvalidInput(
            f"'{name}' is not a valid {what}: use letters, digits, '.', '_' and '-' "
            "(no spaces, slashes or colons; not of the form vN)"
        )
    return name


@dataclass(frozen=True)
class VersionRef:
    """A parsed reference. Exactly one way of naming a version is set.

    ``face:v3`` → model + number; ``face:best`` → model + alias; ``v3`` →
    number (valid when the repository holds one model); ``3fa9c2`` → id
    prefix, or a bare model name meaning its latest version.
    """

    text: str
    model: str | None = None
    number: int | None = None
    alias: str | None = None
    prefix: str | None = None

    @classmethod
    def parse(cls, text: str) -> VersionRef:
        text = text.strip()
        if not text:
            raise InvalidInput("empty version reference; use MODEL:vN, MODEL:ALIAS or an id prefix")
        if ":" in text:
            model, _, sel = text.partition(":")
            check_name(model)
            number = _NUMBER.match(sel)
            if number:
                return cls(text, model=model, number=int(number.group(1)))
            return cls(text, model=model, alias=check_name(sel, "alias name"))
        number = _NUMBER.match(text)
        if number:
            return cls(text, number=int(number.group(1)))
        if _PREFIX.match(text):
            return cls(text, prefix=text)
        return cls(text, model=check_name(text), alias="latest")

"""Where each member's bytes lie inside a zip (PyTorch checkpoints, ``.npz``).

``zipfile`` reads the central directory only. The data offset comes from each
member's local header, whose extra field can differ from the central one
(PyTorch pads it so tensor data starts aligned).
"""

from __future__ import annotations

import struct
import zipfile
from dataclasses import dataclass
from typing import BinaryIO

from amber.formats import sniff
from amber.formats.regions import Malformed

MAX_MEMBERS = 1_000_000
_LOCAL = struct.Struct("<4s22xHH")  # signature, ..., name length, extra length
_LOCAL_SIGNATURE = sniff.ZIP_MAGIC


is_zip = sniff.is_zip


@dataclass(frozen=True)
class Member:
    """One zip member: name, where its stored bytes start, and how many there are."""

    name: str
    data: int
    size: int
    stored: bool  # kept uncompressed, so its bytes are the member's own


def members(f: BinaryIO, size: int) -> list[Member]:
    """Every member of the zip ``f`` (``size`` bytes), in file order."""
    try:
        with zipfile.ZipFile(f) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise Malformed(f"unreadable zip: {exc}") from None
    if len(infos) > MAX_MEMBERS:
        raise Malformed("too many zip members")
    out = [_member(f, info, size) for info in infos]
    return sorted(out, key=lambda m: m.data)


def _member(f: BinaryIO, info: zipfile.ZipInfo, size: int) -> Member:
    f.seek(info.header_offset)
    header = f.read(_LOCAL.size)
    if len(header) != _LOCAL.size:
        raise Malformed("zip local header cut short")
    signature, name_length, extra_length = _LOCAL.unpack(header)
    if signature != _LOCAL_SIGNATURE:
        raise Malformed("zip local header signature missing")
    data = info.header_offset + _LOCAL.size + name_length + extra_length
    if data + info.compress_size > size:
        raise Malformed(f"zip member {info.filename!r} runs past the end of the file")
    stored = info.compress_type == zipfile.ZIP_STORED and info.compress_size == info.file_size
    return Member(info.filename, data, info.compress_size, stored)


def read_member(f: BinaryIO, member: Member, limit: int) -> bytes:
    """The bytes of a stored member, at most ``limit`` of them."""
    if not member.stored or member.size > limit:
        raise Malformed(f"zip member {member.name!r} is compressed or too large to read")
    f.seek(member.data)
    data = f.read(member.size)
    if len(data) != member.size:
        raise Malformed(f"zip member {member.name!r} cut short")
    return data

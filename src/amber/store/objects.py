"""The content-addressed object store: chunks and manifests, by BLAKE3 id.

Layout: ``objects/<first two hex digits>/<64 hex digits>``.

Invariants this module keeps:

1. An object file appears at its final name only whole (written to a temp
   file, then renamed), and is durable once :meth:`sync` returns; callers
   name an object in the catalog only after that. A power cut before then can
   leave a damaged file no catalog row names: an orphan, rewritten when needed
   and removed by gc.
2. ``get`` never returns bytes whose BLAKE3 differs from the id asked for.
3. The store knows nothing of versions: which objects are needed is the
   catalog's business; the store only puts, gets, lists and deletes.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import overload

import blake3

from amber import faults
from amber.errors import Corruption, ObjectMissing
from amber.store import codecs
from amber.store.atomic import fsync_dir, is_temp, sync_filesystem, write_atomic

_DAMAGE_HINT = "run 'amber verify --data' to see which versions it breaks"


@dataclass(frozen=True)
class Stored:
    id: str
    raw_size: int
    stored_size: int
    codec: int
    base: str | None = None
    losses: int = 0  # versions in a row this float piece was stored whole though it had a base


class ObjectStore:
    def __init__(self, root: str) -> None:
        self.root = root
        self._dirty: set[str] = set()
        self._written: list[str] = []
        self._dirty_lock = threading.Lock()
        self._shards: set[str] = set()  # shard folders known to exist

    def path(self, oid: str) -> str:
        return os.path.join(self.root, oid[:2], oid)

    def has(self, oid: str) -> bool:
        return os.path.exists(self.path(oid))

    def put(
        self,
        raw: bytes | memoryview,
        *,
        itemsize: int = 0,
        oid: str | None = None,
        base: str | None = None,
        streak: int | None = None,
    ) -> Stored:
        """Encode and write ``raw``; the folder is made durable by :meth:`sync`.

        With ``base`` (the id of a whole chunk of the same size, e.g. the same
        tensor piece in the parent version), the chunk is stored as a delta
        against it when that is smaller. ``streak`` is set for a float piece that
        had a delta candidate: how many versions in a row the piece was stored
        whole before; a piece stored whole again gets ``streak + 1`` as its losses.
        """
        oid = oid or blake3.blake3(raw).hexdigest()
        coded = None
        if base is not None and itemsize:
            try:
                base_raw = self.get_whole(base, scratch=True)
                coded = codecs.encode_delta(raw, itemsize, base, base_raw, self.stored_size(base))
            except (ObjectMissing, Corruption, FileNotFoundError):
                coded = None
        codec, parts = coded or codecs.encode(raw, itemsize)
        folder = os.path.join(self.root, oid[:2])
        if folder not in self._shards:  # a stat per object adds up over thousands of chunks
            os.makedirs(folder, exist_ok=True)
            self._shards.add(folder)
        path = self.path(oid)
        try:
            stored = write_atomic(path, parts, durable=False)
        except FileNotFoundError:  # the shard folder was removed behind our back
            os.makedirs(folder, exist_ok=True)
            stored = write_atomic(path, parts, durable=False)
        with self._dirty_lock:
            self._dirty.add(folder)
            self._written.append(path)
        delta = codec in codecs.DELTAS
        losses = streak + 1 if streak is not None and not delta else 0
        return Stored(oid, len(raw), stored, codec, base if delta else None, losses)

    def sync(self) -> None:
        """Make every object written since the last call durable, with its folder entry.

        Objects are written without a per-file fsync (the rename already makes
        them appear whole); this one call flushes the batch before the catalog
        names any of them. syncfs(2) flushes files and folder entries alike
        (sync(2) semantics: all data and metadata of the filesystem); without
        it, each file and then each shard folder is fsynced.
        """
        with self._dirty_lock:
            dirty, self._dirty = self._dirty, set()
            written, self._written = self._written, []
        if not written:
            return
        if sync_filesystem(self.root, written):
            return  # syncfs flushed the folders' entries too
        for folder in sorted(dirty):
            fsync_dir(folder)

    def read_encoded(self, oid: str) -> bytes:
        try:
            faults.io_fault("read")
            with open(self.path(oid), "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            raise ObjectMissing(oid) from None

    @overload
    def get(self, oid: str) -> bytes | bytearray: ...
    @overload
    def get(self, oid: str, *, scratch: bool) -> codecs.Buffer: ...

    def get(self, oid: str, *, scratch: bool = False) -> codecs.Buffer:
        """The raw bytes of ``oid``, checked against their hash.

        ``scratch``: decode into this thread's reusable buffer; the bytes are
        valid only until the thread's next ``get(..., scratch=True)``.
        """
        blob = self.read_encoded(oid)
        try:
            base = codecs.base_of(blob)
            if base == oid:
                raise Corruption("it names itself as its delta base")
            size = codecs.read_header(blob)[2]
            out = codecs.scratch("chunk", size) if scratch and size <= codecs.SCRATCH_MAX else None
            # The base's own hash check can wait: a wrong base cannot give bytes
            # that hash to ``oid``, so the check below covers both objects.
            raw = codecs.decode(blob, self.get_whole(base, scratch=True, check=False) if base else None, out)
        except Corruption as exc:
            if exc.message.startswith("object "):
                raise
            raise Corruption(f"object {oid[:16]} is damaged: {exc.message}", hint=_DAMAGE_HINT) from None
        if blake3.blake3(raw).hexdigest() != oid:
            if base:
                self.get_whole(base)  # names the base if the damage is there
            raise Corruption(f"object {oid[:16]} is damaged: its bytes no longer match their hash", hint=_DAMAGE_HINT)
        return raw

    def get_whole(self, oid: str, *, scratch: bool = False, check: bool = True) -> codecs.Buffer:
        """The raw bytes of a delta base, which must itself be a whole chunk.

        ``scratch``: decode into this thread's reusable buffer; the bytes are
        valid only until the thread decodes the next base that way. ``check=False``
        skips the hash check, for a caller that checks what it derives from them.
        A snapshot checks: a delta must never be coded against damaged bytes.
        """
        blob = self.read_encoded(oid)
        if codecs.base_of(blob) is not None:
            raise Corruption(f"object {oid[:16]} is a delta base but is itself a delta")
        try:
            size = codecs.read_header(blob)[2]
            use = scratch and size <= codecs.SCRATCH_MAX  # a damaged header must not size a buffer
            raw = codecs.decode(blob, out=codecs.scratch("base", size) if use else None)
        except Corruption as exc:
            raise Corruption(f"object {oid[:16]} is damaged: {exc.message}", hint=_DAMAGE_HINT) from None
        if check and blake3.blake3(raw).hexdigest() != oid:
            raise Corruption(f"object {oid[:16]} is damaged: its bytes no longer match their hash", hint=_DAMAGE_HINT)
        return raw

    def stored_size(self, oid: str) -> int:
        return os.stat(self.path(oid)).st_size

    def delete(self, oid: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(oid))

    def sync_removed(self, oids: set[str]) -> None:
        """fsync the folders that held the removed objects, so the removal is durable."""
        for shard in sorted({oid[:2] for oid in oids}):
            folder = os.path.join(self.root, shard)
            if os.path.isdir(folder):
                fsync_dir(folder)

    def ids(self) -> Iterator[str]:
        """Every object id present, in no particular order (temp files skipped)."""
        with os.scandir(self.root) as shards:
            for shard in shards:
                if not shard.is_dir() or len(shard.name) != 2:
                    continue
                with os.scandir(shard.path) as entries:
                    for entry in entries:
                        if not is_temp(entry.name) and len(entry.name) == 64:
                            yield entry.name

    def temp_files(self) -> Iterator[str]:
        with os.scandir(self.root) as shards:
            for shard in shards:
                if shard.is_dir():
                    with os.scandir(shard.path) as entries:
                        yield from (e.path for e in entries if is_temp(e.name))

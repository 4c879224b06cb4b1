"""Read files into stored chunks: cut, hash, encode and write on a worker pool.

A file is read once. Its regions (from the formats layer) are cut into pieces:
fixed pieces inside tensors, content-defined chunks elsewhere. Each piece goes
to a worker that hashes it (BLAKE3) and, if the store lacks it, encodes and
writes it. zstd and BLAKE3 release the GIL, so workers run in parallel; at most
``2 × workers`` pieces are in flight, so memory stays flat whatever the size.

A file that changes while it is read (stat before and after differ) is read
again; after ``TRIES`` attempts the snapshot fails with FileKeptChanging.
The kernel stamps mtime and ctime from a clock that ticks every few
milliseconds, so two writes within one tick leave the same stamps: a read that
starts right after the first and ends before the second would look clean. A
file changed less than ``SETTLE_NS`` ago is therefore read only once its
stamps are that old (waiting at most ``SETTLE_BUDGET_NS``), so any later write
carries a newer stamp.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait

import blake3
from pyfastcdc import FastCDC

from amber import faults
from amber.errors import FileKeptChanging
from amber.formats import PIECE, Region, plan_regions
from amber.progress import Progress
from amber.store.objects import ObjectStore, Stored

TRIES = 4
SETTLE_NS = 20_000_000  # two ticks or more of the kernel's file-time clock (HZ >= 100)
SETTLE_BUDGET_NS = 250_000_000
_READ = 16 << 20
_CDC = FastCDC(avg_size=1 << 20, min_size=256 << 10, max_size=PIECE)


class FileChanged(Exception):
    """Internal: the file changed under the reader."""


class BasePicker:
    """Chooses the whole chunk a new float piece may be delta-coded against.

    The candidate is the piece at the same position of the same file in the
    parent version, when it has the same size. Deltas always point at a whole
    chunk (the candidate itself, or the candidate's own base), so no chain is
    ever longer than one step. After ``KEYFRAME_EVERY`` deltas against one base,
    the next piece is stored whole and becomes the new base.

    A piece whose delta lost (an optimizer's first moment, an RMSprop
    accumulator: new numbers at every save) is stored whole, and the next
    ``RETRY_EVERY - 1`` versions of it do not read a base at all; then a delta
    is tried again, in case the tensor has settled.
    """

    KEYFRAME_EVERY = 4  # 8 stored 1% more on a real fine-tune: deltas drift from an old base
    RETRY_EVERY = 4

    def __init__(self, delta_bases: dict[str, str], uses: dict[str, int], losses: dict[str, int] | None = None) -> None:
        self.delta_bases = delta_bases  # delta chunk id -> its base
        self.uses = uses  # base id -> how many deltas use it
        self.losses = losses or {}  # whole chunk id -> versions in a row its delta lost
        self._lock = threading.Lock()

    def pick(self, previous: tuple[tuple[str, int], ...], index: int, size: int) -> tuple[str | None, int | None]:
        """(base to try, or None; the candidate's loss streak, or None when there is no candidate)."""
        if index >= len(previous) or previous[index][1] != size:
            return None, None
        candidate = previous[index][0]
        streak = self.losses.get(candidate, 0)
        if streak % self.RETRY_EVERY:
            return None, streak
        base = self.delta_bases.get(candidate, candidate)
        with self._lock:
            if self.uses.get(base, 0) >= self.KEYFRAME_EVERY:
                return None, None
            self.uses[base] = self.uses.get(base, 0) + 1
        return base, streak


class ChunkWriter:
    """Hashes pieces and writes the ones the store does not have yet."""

    def __init__(
        self,
        store: ObjectStore,
        known: set[str],
        pool: ThreadPoolExecutor,
        workers: int,
        progress: Progress,
        bases: BasePicker | None = None,
    ) -> None:
        self.store = store
        self.known = known
        self.bases = bases or BasePicker({}, {})
        self.pool = pool
        self.window = 2 * workers
        self.progress = progress
        self.new: dict[str, Stored] = {}
        # Tensor pieces are read into these buffers in turn. At most ``window + 1``
        # pieces are in flight when the next one is read, so a buffer is reused only
        # after the worker that had it is done. Reusing them spares the kernel
        # faulting in fresh pages for every 4 MiB read (a third of a snapshot's CPU).
        self._ring = _Ring(self.window + 2)
        self._claimed: set[str] = set()
        self._lock = threading.Lock()

    def _work(
        self, data: bytes | memoryview, itemsize: int, base: str | None, streak: int | None
    ) -> tuple[str, int]:
        oid = blake3.blake3(data).hexdigest()
        with self._lock:
            fresh = oid not in self.known and oid not in self._claimed
            if fresh:
                self._claimed.add(oid)
        if fresh:
            try:
                stored = self.store.put(data, itemsize=itemsize, oid=oid, base=base, streak=streak)
            except BaseException:
                with self._lock:
                    self._claimed.discard(oid)
                raise
            with self._lock:
                self.new[oid] = stored
        self.progress.advance(len(data))
        return oid, len(data)

    def read_file(
        self, path: str, previous: tuple[tuple[str, int], ...] = ()
    ) -> tuple[os.stat_result, tuple[tuple[str, int], ...]]:
        """Store ``path``; return the stat it was read under and its chunks.

        ``previous`` is the file's chunk list in the parent version: float
        pieces may be delta-coded against the piece at the same position.
        """
        for attempt in range(TRIES):
            try:
                return self._read_once(path, previous)
            except FileChanged:
                time.sleep(0.05 * (attempt + 1))
        raise FileKeptChanging(path, TRIES)

    def _read_once(
        self, path: str, previous: tuple[tuple[str, int], ...]
    ) -> tuple[os.stat_result, tuple[tuple[str, int], ...]]:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        inflight: deque[Future[tuple[str, int]]] = deque()
        try:
            before = _settled(fd)
            chunks: list[tuple[str, int]] = []
            pieces = _pieces(fd, plan_regions(path, before.st_size), before.st_size, self._ring)
            for index, (data, itemsize) in enumerate(pieces):
                base, streak = self.bases.pick(previous, index, len(data)) if itemsize else (None, None)
                inflight.append(self.pool.submit(self._work, data, itemsize, base, streak))
                while len(inflight) > self.window:
                    chunks.append(inflight.popleft().result())
            chunks.extend(f.result() for f in inflight)
            after = os.fstat(fd)
        finally:
            wait(inflight)  # a retry reads into the ring again: no worker may still hold a buffer
            os.close(fd)
        if _sig(before) != _sig(after) or _sig(after) != _sig(os.stat(path, follow_symlinks=False)):
            raise FileChanged(path)
        return after, tuple(chunks)


def _settled(fd: int) -> os.stat_result:
    """The file's stat, taken once its last change is at least SETTLE_NS old.

    A file that never rests that long (a log appended every few milliseconds)
    is read after SETTLE_BUDGET_NS anyway: its size or a later stamp still
    shows a change during the read, as before.
    """
    deadline = time.monotonic_ns() + SETTLE_BUDGET_NS
    while True:
        st = os.fstat(fd)
        age = time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns)
        if age >= SETTLE_NS or time.monotonic_ns() >= deadline:
            return st
        time.sleep(min(SETTLE_NS, SETTLE_NS - age) / 1e9)  # a stamp in the future waits one window at most


def _sig(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


class _Ring:
    """Piece-sized read buffers, handed out in turn."""

    def __init__(self, count: int) -> None:
        self._buffers = [bytearray(0) for _ in range(count)]
        self._next = 0

    def read(self, fd: int, offset: int, length: int) -> memoryview:
        faults.io_fault("read")
        i, self._next = self._next, (self._next + 1) % len(self._buffers)
        if len(self._buffers[i]) < length:
            self._buffers[i] = bytearray(max(length, PIECE))
        view = memoryview(self._buffers[i])[:length]
        if os.preadv(fd, [view], offset) != length:  # shrank while we read it
            raise FileChanged(str(fd))
        return view


def _read_exact(fd: int, offset: int, length: int) -> bytes:
    faults.io_fault("read")
    data = os.pread(fd, length, offset)
    if len(data) != length:  # shrank while we read it
        raise FileChanged(str(fd))
    return data


def _pieces(fd: int, regions: list[Region], size: int, ring: _Ring) -> Iterator[tuple[bytes | memoryview, int]]:
    if sum(r.length for r in regions) != size:  # a planner bug must never lose bytes
        regions = [Region(0, size, 0, cdc=True)] if size else []
    for region in regions:
        if region.cdc:
            yield from _cdc_pieces(fd, region)
        else:
            end = region.offset + region.length
            for off in range(region.offset, end, PIECE):
                yield ring.read(fd, off, min(PIECE, end - off)), region.itemsize


def _cdc_pieces(fd: int, region: Region) -> Iterator[tuple[bytes | memoryview, int]]:
    pos, end = region.offset, region.offset + region.length
    carry = b""
    while pos < end:
        block = _read_exact(fd, pos, min(_READ, end - pos))
        pos += len(block)
        buf = carry + block if carry else block
        cuts = list(_CDC.cut_buf(buf))
        last = pos >= end
        keep = cuts if last else cuts[:-1]
        for cut in keep:
            yield memoryview(buf)[cut.offset : cut.offset + cut.length], 0
        carry = b"" if last else bytes(memoryview(buf)[cuts[-1].offset :])

"""Write a version's files into a new folder, checking every chunk's hash.

Used by restore (into a staging folder next to the model folder) and export.
Folders are created first, then files, then symlinks last, so no write ever
passes through a link; files are opened with O_EXCL|O_NOFOLLOW under folders
this module created itself. Everything written is fsynced before returning.

Files are written on a worker pool: each task reads one chunk (read, zstd,
un-grouping and the BLAKE3 check all release the GIL) and writes it at its
offset with ``pwrite``, so pieces of several files may be in flight at once.
At most ``2 × workers`` tasks are in flight, so memory (a chunk per worker)
and open files stay flat whatever the size. When a file's last chunk has
landed, a task sets its mode and fsyncs it; the main thread alone opens and
closes descriptors. The first error a worker raises stops the rest and is
raised again; every descriptor opened is closed whatever happens (the caller
removes the folder).
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from amber import faults
from amber.errors import Corruption
from amber.ops.context import Context
from amber.ops.swap import remove_tree
from amber.store.atomic import fsync_dir
from amber.types import FileEntry


def materialize(
    ctx: Context, root: str, entries: Sequence[FileEntry], dest: str, *, reuse: dict[str, str] | None = None
) -> None:
    """Create ``dest`` (must not exist) holding exactly ``entries``.

    ``reuse`` maps entry paths to existing files (on the same filesystem) known
    to hold exactly that entry's bytes and mode; they are hard-linked, not
    written again. Restore uses it for files a training step did not change.
    """
    reuse = reuse or {}
    total = sum(e.size for e in entries if e.path not in reuse)
    ctx.progress.start("restore", total)
    try:
        if root == "file":
            _write_files(ctx, [(dest, entries[0])])
            fsync_dir(os.path.dirname(dest) or ".")
            return
        os.mkdir(dest, 0o700)
        dirs = [e for e in entries if e.type == "dir"]
        for d in dirs:
            os.mkdir(os.path.join(dest, d.path), 0o700)
        _write_files(ctx, _to_write(entries, dest, reuse))
        for e in entries:
            if e.type == "symlink":
                os.symlink(e.target or "", os.path.join(dest, e.path))
        for d in sorted(dirs, key=lambda d: d.path.count("/"), reverse=True):
            path = os.path.join(dest, d.path)
            fsync_dir(path)
            os.chmod(path, d.mode)
        fsync_dir(dest)
        os.chmod(dest, 0o755)
    finally:
        ctx.progress.finish()


def staging_path(folder: str, purpose: str) -> str:
    """A fresh hidden name beside ``folder``, on the same filesystem."""
    parent, name = os.path.split(folder.rstrip(os.sep))
    return os.path.join(parent, f".{name}.amber-{purpose}-{secrets.token_hex(4)}")


def materialize_new(ctx: Context, root: str, entries: Sequence[FileEntry], target: str, purpose: str) -> None:
    """Create ``target`` holding exactly ``entries``, all at once: staged beside it, then renamed.

    A single-file version lands inside ``target`` as a folder when ``purpose`` is
    "cache" (so ``amber.path`` always returns a folder's child); otherwise at ``target``.
    """
    staging = staging_path(target, purpose)
    try:
        if root == "file" and purpose == "cache":
            os.mkdir(staging, 0o755)
            materialize(ctx, root, entries, os.path.join(staging, entries[0].path))
        else:
            materialize(ctx, root, entries, staging)
        os.rename(staging, target)
    except BaseException:
        remove_tree(staging)
        raise


def _to_write(entries: Sequence[FileEntry], dest: str, reuse: dict[str, str]) -> Iterator[tuple[str, FileEntry]]:
    """The files of ``entries`` to write, in order, hard-linking the reusable ones on the way."""
    for e in entries:
        if e.type == "file" and not _link(reuse.get(e.path), os.path.join(dest, e.path)):
            yield os.path.join(dest, e.path), e


def _link(source: str | None, target: str) -> bool:
    if source is None:
        return False
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError:  # another filesystem, too many links, gone: write it instead
        return False
    return True


class _Out:
    """A file being written: its descriptor, its final mode, how many of its chunks are still to land."""

    __slots__ = ("closed", "fd", "left", "mode")

    def __init__(self, fd: int, mode: int, chunks: int) -> None:
        self.fd = fd
        self.mode = mode
        self.left = chunks  # counted down by the main thread only
        self.closed = False


class _Batch:
    """What the tasks of one :func:`_write_files` share: the first error any of them raised.

    Once it is set, tasks do no more work.
    """

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self._lock = threading.Lock()

    def fail(self, exc: BaseException) -> None:
        with self._lock:
            if self.error is None:
                self.error = exc
        self.stop.set()


def _write_files(ctx: Context, files: Iterable[tuple[str, FileEntry]]) -> None:
    """Write each (path, entry) of ``files`` to a new file at path, fsynced, on a worker pool."""
    window = 2 * ctx.workers
    batch = _Batch()
    outs: list[_Out] = []
    chunks: set[Future[_Out]] = set()  # one per chunk being read and written
    syncs: set[Future[_Out]] = set()  # one per file being fsynced
    pool = ThreadPoolExecutor(max_workers=ctx.workers, thread_name_prefix="amber-write")

    def reap() -> None:
        """Wait for at least one task to end; take its result, or raise the first error."""
        done, _ = wait([*chunks, *syncs], return_when=FIRST_COMPLETED)
        for fut in done:
            error = fut.exception()
            if error is not None:
                raise batch.error or error
        for fut in done:
            out = fut.result()
            if fut in syncs:
                syncs.discard(fut)
                out.closed = True
                os.close(out.fd)
            else:
                chunks.discard(fut)
                out.left -= 1
                if out.left == 0:
                    syncs.add(pool.submit(_sync, batch, out))

    try:
        for path, entry in files:
            while len(chunks) + len(syncs) >= window:  # before opening: empty files hold fds too
                reap()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            out = _Out(fd, entry.mode, len(entry.chunks))
            outs.append(out)
            if not entry.chunks:
                syncs.add(pool.submit(_sync, batch, out))
            offset = 0
            for oid, size in entry.chunks:
                while len(chunks) + len(syncs) >= window:  # bounds memory and open files alike
                    reap()
                chunks.add(pool.submit(_put, ctx, batch, out, oid, size, offset))
                offset += size
        while chunks or syncs:
            reap()
    except BaseException as exc:
        batch.fail(exc)
        # No descriptor is closed before every task has ended: a task may still write to it.
        pool.shutdown(wait=True, cancel_futures=True)
        for out in outs:
            if not out.closed:
                out.closed = True
                os.close(out.fd)
        raise
    pool.shutdown(wait=True)


def _put(ctx: Context, batch: _Batch, out: _Out, oid: str, size: int, offset: int) -> _Out:
    """Read chunk ``oid`` (checking its hash) and write it at ``offset`` of ``out``."""
    try:
        if batch.stop.is_set():
            return out
        data = ctx.store.get(oid, scratch=True)  # written below, before this thread decodes again
        if len(data) != size:
            raise Corruption(f"object {oid[:16]} holds {len(data)} bytes where its file expects {size}")
        if batch.stop.is_set():
            return out
        faults.io_fault("write")
        view = memoryview(data)
        while view:
            n = os.pwrite(out.fd, view, offset)
            view = view[n:]
            offset += n
        ctx.progress.advance(size)
    except BaseException as exc:
        batch.fail(exc)
        raise
    return out


def _sync(batch: _Batch, out: _Out) -> _Out:
    """Give a fully written file its mode and make it durable (the main thread closes it)."""
    try:
        if batch.stop.is_set():
            return out
        os.fchmod(out.fd, out.mode)
        os.fsync(out.fd)
    except BaseException as exc:
        batch.fail(exc)
        raise
    return out

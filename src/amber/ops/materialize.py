"""Write a version's files into a new folder, checking every chunk's hash.

Used by restore (into a staging folder next to the model folder) and export.
Folders are created first, then files, then symlinks last, so no write ever
passes through a link; files are opened with O_EXCL|O_NOFOLLOW under folders
this module created itself. Everything written is fsynced before returning.
"""

from __future__ import annotations

import os
import secrets
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from amber import faults
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
        with ThreadPoolExecutor(max_workers=ctx.workers, thread_name_prefix="amber-read") as pool:
            if root == "file":
                _write_file(ctx, pool, dest, entries[0])
                fsync_dir(os.path.dirname(dest) or ".")
                return
            os.mkdir(dest, 0o700)
            dirs = [e for e in entries if e.type == "dir"]
            for d in dirs:
                os.mkdir(os.path.join(dest, d.path), 0o700)
            for e in entries:
                if e.type == "file" and not _link(reuse.get(e.path), os.path.join(dest, e.path)):
                    _write_file(ctx, pool, os.path.join(dest, e.path), e)
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


def _link(source: str | None, target: str) -> bool:
    if source is None:
        return False
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError:  # another filesystem, too many links, gone: write it instead
        return False
    return True


def _write_file(ctx: Context, pool: ThreadPoolExecutor, path: str, entry: FileEntry) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        inflight: deque[Future[bytes]] = deque()
        for oid, _ in entry.chunks:
            inflight.append(pool.submit(ctx.store.get, oid))
            if len(inflight) > 2 * ctx.workers:
                _write_all(ctx, fd, inflight.popleft().result())
        while inflight:
            _write_all(ctx, fd, inflight.popleft().result())
        os.fchmod(fd, entry.mode)
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(ctx: Context, fd: int, data: bytes) -> None:
    faults.io_fault("write")
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
    ctx.progress.advance(len(data))

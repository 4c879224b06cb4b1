"""The SQLite catalog: connection, transactions, migrations.

Invariants:

1. Every mutation is one transaction (``BEGIN IMMEDIATE`` … ``COMMIT``).
2. A row that names an object is committed only after that object is durable
   in the store (the callers in ``amber.ops`` keep this order).
3. WAL mode with ``synchronous=FULL``: a committed transaction survives power loss.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Sequence

from amber.catalog.migrations import MIGRATIONS, SCHEMA_VERSION
from amber.errors import Corruption, StorageError


def _damaged(path: str, exc: Exception) -> Corruption:
    return Corruption(
        f"the catalog '{path}' is damaged or not a catalog ({exc})",
        hint="restore .amber/catalog.db from a copy, or pull the versions again from a remote",
    )


def _unavailable(path: str, exc: Exception) -> StorageError:
    try:
        st = os.statvfs(os.path.dirname(path) or ".")
        full = st.f_bavail * st.f_frsize < (1 << 20)
    except OSError:
        full = False
    if full:
        return StorageError(
            f"no space left on the device holding the catalog '{path}' ({exc}); nothing was changed",
            hint="free some space, then try again",
        )
    return StorageError(f"cannot use the catalog '{path}': {exc}; nothing was changed")


class Catalog:
    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self.db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.OperationalError as exc:  # locked, unreadable, disk full: not damage
            raise _unavailable(path, exc) from None
        except sqlite3.DatabaseError as exc:
            raise _damaged(path, exc) from None

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Read inside one transaction: every query sees the same committed state."""
        self.db.execute("BEGIN")
        try:
            yield
        finally:
            self.db.execute("COMMIT")

    def _migrate(self) -> None:
        current = self.db.execute("PRAGMA user_version").fetchone()[0]
        if current > SCHEMA_VERSION:
            raise Corruption(
                f"the catalog has schema version {current}, newer than this Amber knows ({SCHEMA_VERSION})",
                hint="upgrade Amber: pip install -U amber",
            )
        if current == SCHEMA_VERSION:
            return
        with self.transaction():
            current = self.db.execute("PRAGMA user_version").fetchone()[0]
            for number in range(current, SCHEMA_VERSION):
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        self.db.execute(statement)
            self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise _unavailable(self.path, exc) from None
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        try:
            self.db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            self.db.execute("ROLLBACK")
            raise _unavailable(self.path, exc) from None

    def query(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        try:
            return self.db.execute(sql, tuple(params)).fetchall()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError):
                raise
            raise _damaged(self.path, exc) from None

    def integrity(self) -> list[str]:
        """SQLite's own quick check; an empty list means healthy."""
        rows = self.query("PRAGMA quick_check")
        problems = [r[0] for r in rows if r[0] != "ok"]
        return problems

    def close(self) -> None:
        self.db.close()

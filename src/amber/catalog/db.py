"""The SQLite catalog: connection, transactions, migrations.

Invariants:

1. Every mutation is one transaction (``BEGIN IMMEDIATE`` … ``COMMIT``).
2. A row that names an object is committed only after that object is durable
   in the store (the callers in ``amber.ops`` keep this order).
3. WAL mode with ``synchronous=FULL``: a committed transaction survives power loss.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence

from amber.catalog.migrations import MIGRATIONS, SCHEMA_VERSION
from amber.errors import Corruption, StorageError


def _damaged(path: str, exc: Exception) -> Corruption:
    return Corruption(
        f"the catalog '{path}' is damaged or not a catalog ({exc})",
        hint="restore .amber/catalog.db from a copy, or pull the versions again from a remote",
    )


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
        except sqlite3.DatabaseError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise
            raise _damaged(path, exc) from None

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
            raise StorageError(f"cannot write the catalog: {exc}") from None
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        try:
            self.db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            self.db.execute("ROLLBACK")
            raise StorageError(f"cannot commit to the catalog: {exc}") from None

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

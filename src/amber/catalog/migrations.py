"""Schema migrations, applied in order inside one transaction each.

The schema version is SQLite's ``user_version``. A migration is never edited
once released; changes come as a new entry at the end.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: models, versions, chunks and what needs them, aliases, stat cache, usage events
    """
    CREATE TABLE models (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        path TEXT,
        model_type TEXT,
        head TEXT,
        next_number INTEGER NOT NULL DEFAULT 1,
        settings TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL
    );
    CREATE TABLE versions (
        id TEXT PRIMARY KEY,
        model_id INTEGER NOT NULL REFERENCES models(id),
        number INTEGER NOT NULL,
        label TEXT NOT NULL,
        kind TEXT NOT NULL,
        created_at TEXT NOT NULL,
        iteration INTEGER,
        metrics TEXT NOT NULL,
        notes TEXT NOT NULL,
        model_type TEXT,
        tags TEXT NOT NULL,
        metadata TEXT NOT NULL,
        parent TEXT,
        manifest TEXT NOT NULL,
        size_bytes INTEGER NOT NULL,
        file_count INTEGER NOT NULL,
        UNIQUE (model_id, number)
    );
    CREATE INDEX versions_manifest ON versions(model_id, manifest);
    CREATE TABLE chunks (
        id TEXT PRIMARY KEY,
        raw_size INTEGER NOT NULL,
        stored_size INTEGER NOT NULL,
        codec INTEGER NOT NULL,
        base TEXT
    ) WITHOUT ROWID;
    CREATE TABLE version_chunks (
        version_id TEXT NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
        chunk_id TEXT NOT NULL,
        PRIMARY KEY (version_id, chunk_id)
    ) WITHOUT ROWID;
    CREATE INDEX version_chunks_by_chunk ON version_chunks(chunk_id);
    CREATE TABLE aliases (
        model_id INTEGER NOT NULL REFERENCES models(id),
        name TEXT NOT NULL,
        version_id TEXT NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
        pinned INTEGER NOT NULL DEFAULT 1,
        PRIMARY KEY (model_id, name)
    );
    CREATE TABLE stat_cache (
        model_id INTEGER NOT NULL,
        path TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        ctime_ns INTEGER NOT NULL,
        ino INTEGER NOT NULL,
        read_ns INTEGER NOT NULL,
        entry TEXT NOT NULL,
        PRIMARY KEY (model_id, path)
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        version_id TEXT NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        who TEXT,
        at TEXT NOT NULL
    );
    """,
    # 2: sub-delta chunks (codec 4) may appear; chunks.losses counts, for a float piece
    # stored whole although it had a delta base, how many versions in a row its delta
    # lost (or was not tried), so the next snapshot can skip a delta that keeps losing
    """
    ALTER TABLE chunks ADD COLUMN losses INTEGER NOT NULL DEFAULT 0;
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)

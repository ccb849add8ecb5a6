"""The Files API's registry on the embedded store: what each `file-…` id names at Kimi, kept across restarts.

Only the records live here (a few hundred bytes each); the bytes themselves went to Kimi at upload. Calls are rare
(an upload, a listing, a chat that names a file) and each is one small statement, run in a worker thread so that a
slow disk never stalls the event loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import astuple
from typing import Any

from kimi_free_api.core.attachments.files import StoredFile
from kimi_free_api.state.sqlite import SqliteStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY,
    kimi_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    filename TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    media_type TEXT NOT NULL,
    purpose TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS files_by_owner ON files (owner, created_at);
"""
_COLUMNS = "id, kimi_id, owner, filename, bytes, sha256, media_type, purpose, created_at"
_INSERT = f"INSERT OR REPLACE INTO files ({_COLUMNS}) VALUES ({', '.join('?' * len(_COLUMNS.split(', ')))})"


class SqliteFileRegistry:
    def __init__(self, store: SqliteStore) -> None:
        self._db = store.db
        self._lock = store.lock
        with self._lock:
            self._db.executescript(SCHEMA)

    async def put(self, file: StoredFile) -> None:
        await asyncio.to_thread(self._run, _INSERT, astuple(file))

    async def get(self, file_id: str) -> StoredFile | None:
        rows = await asyncio.to_thread(self._rows, f"SELECT {_COLUMNS} FROM files WHERE id = ?", (file_id,))
        return StoredFile(*rows[0]) if rows else None

    async def remove(self, file_id: str) -> bool:
        return await asyncio.to_thread(self._run, "DELETE FROM files WHERE id = ?", (file_id,)) > 0

    async def owned_by(self, owners: frozenset[str]) -> list[StoredFile]:
        if not owners:
            return []
        places = ", ".join("?" * len(owners))
        query = f"SELECT {_COLUMNS} FROM files WHERE owner IN ({places}) ORDER BY created_at, rowid"
        return [StoredFile(*row) for row in await asyncio.to_thread(self._rows, query, tuple(owners))]

    def _run(self, statement: str, values: tuple[object, ...]) -> int:
        with self._lock:
            return self._db.execute(statement, values).rowcount

    def _rows(self, query: str, values: tuple[object, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(query, values).fetchall()

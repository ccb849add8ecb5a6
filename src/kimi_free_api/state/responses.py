"""The Responses API's stored responses on the embedded store, so `previous_response_id` and
`GET /v1/responses/{id}` keep working across restarts.

The most recently stored `CAPACITY` responses are kept, as in memory. Each call is one or two small statements, run
in a worker thread so that a slow disk never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from kimi_free_api.core.conversation.response_store import (
    CAPACITY,
    StoredResponse,
    decode_transcript,
    encode_transcript,
)
from kimi_free_api.state.sqlite import SqliteStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    messages BLOB NOT NULL,
    body BLOB NOT NULL,
    stored_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_by_age ON responses (stored_at);
"""


class SqliteResponseStore:
    def __init__(self, store: SqliteStore, capacity: int = CAPACITY) -> None:
        self._db = store.db
        self._lock = store.lock
        self._capacity = capacity
        with self._lock:
            self._db.executescript(SCHEMA)

    async def put(self, response: StoredResponse) -> None:
        row = (response.id, response.owner, encode_transcript(response.messages), response.body, time.time())
        await asyncio.to_thread(self._put, row)

    async def get(self, response_id: str) -> StoredResponse | None:
        row = await asyncio.to_thread(self._get, response_id)
        if row is None:
            return None
        return StoredResponse(row[0], row[1], decode_transcript(row[2]), row[3])

    async def delete(self, response_id: str) -> bool:
        return await asyncio.to_thread(self._delete, response_id)

    def _put(self, row: tuple[Any, ...]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)", row)
                self._db.execute(
                    "DELETE FROM responses WHERE id IN (SELECT id FROM responses ORDER BY stored_at DESC LIMIT -1 "
                    "OFFSET ?)",
                    (self._capacity,),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _get(self, response_id: str) -> tuple[Any, ...] | None:
        with self._lock:
            row: tuple[Any, ...] | None = self._db.execute(
                "SELECT id, owner, messages, body FROM responses WHERE id = ?", (response_id,)
            ).fetchone()
            if row is not None:  # used: the last to be forgotten
                self._db.execute("UPDATE responses SET stored_at = ? WHERE id = ?", (time.time(), response_id))
        return row

    def _delete(self, response_id: str) -> bool:
        with self._lock:
            return self._db.execute("DELETE FROM responses WHERE id = ?", (response_id,)).rowcount > 0

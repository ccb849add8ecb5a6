"""The conversation map and cleanup queue on the embedded store.

Reads come from memory (one gateway process owns a SQLite file); every change is written behind, in batches, off
the request path, so remembering a conversation costs the request nothing. The table is reloaded at start, which is
how chats left behind by a killed process are found and deleted.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from dataclasses import astuple

from kimi_free_api.core.ports import Conversation
from kimi_free_api.state.sqlite import SqliteStore, add_columns

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    chat_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    token TEXT NOT NULL,
    message_id TEXT NOT NULL,
    key TEXT NOT NULL,
    expires_at REAL NOT NULL,
    writer TEXT NOT NULL,
    owner TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0
);
"""
# Added after the first release: a store written before gets them, empty (no owner: only seed clients continue).
_LATER_COLUMNS = {"owner": "TEXT NOT NULL DEFAULT ''", "attempts": "INTEGER NOT NULL DEFAULT 0"}
_COLUMNS = "chat_id, account_id, token, message_id, key, expires_at, writer, owner, attempts"
_PLACES = ", ".join("?" * len(_COLUMNS.split(", ")))
_FLUSH_EVERY_S = 0.05


class SqliteConversations:
    def __init__(self, store: SqliteStore) -> None:
        self._db = store.db
        self._lock = store.lock
        with self._lock:
            self._db.executescript(SCHEMA)
            add_columns(self._db, "conversations", _LATER_COLUMNS)
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM conversations").fetchall()
        self._chats: dict[str, Conversation] = {row[0]: Conversation(*row) for row in rows}
        self._keys: dict[str, str] = {c.key: c.chat_id for c in self._chats.values() if c.key}
        self._pending: dict[str, Conversation | None] = {}
        self._on_disk: set[str] = set(self._chats)
        self._flusher: asyncio.Task[None] | None = None

    async def put(self, conversation: Conversation) -> None:
        old = self._chats.get(conversation.chat_id)
        if old is not None and old.key and self._keys.get(old.key) == old.chat_id:
            del self._keys[old.key]
        self._chats[conversation.chat_id] = conversation
        if conversation.key:
            self._keys[conversation.key] = conversation.chat_id
        self._later(conversation.chat_id, conversation)

    async def by_key(self, key: str) -> Conversation | None:
        chat_id = self._keys.get(key)
        return self._chats.get(chat_id) if chat_id else None

    async def by_chat(self, chat_id: str) -> Conversation | None:
        return self._chats.get(chat_id)

    async def remove(self, chat_id: str) -> None:
        old = self._chats.pop(chat_id, None)
        if old is not None and old.key and self._keys.get(old.key) == chat_id:
            del self._keys[old.key]
        if self._pending.get(chat_id, False) is not False and chat_id not in self._on_disk:
            # Recorded and removed before it was ever written (a chat deleted right after its answer).
            del self._pending[chat_id]
            return
        self._later(chat_id, None)

    async def live_instances(self, instance: str, ttl_s: float) -> frozenset[str]:
        """One process owns a SQLite file: whoever wrote before this start is gone."""
        return frozenset({instance})

    async def due(self, now: float, live_writers: frozenset[str], limit: int) -> list[Conversation]:
        due = [
            c
            for c in self._chats.values()
            if (c.writer and c.writer not in live_writers) or (not c.writer and c.expires_at <= now)
        ]
        return due[:limit]

    def _later(self, chat_id: str, conversation: Conversation | None) -> None:
        self._pending[chat_id] = conversation
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon(), name="conversations-flush")

    async def _flush_soon(self) -> None:
        await asyncio.sleep(_FLUSH_EVERY_S)
        await self.flush()

    async def flush(self) -> None:
        pending, self._pending = self._pending, {}
        if pending:
            await asyncio.to_thread(self._write, pending)

    def _write(self, pending: dict[str, Conversation | None]) -> None:
        upserts = [astuple(c) for c in pending.values() if c is not None]
        deletes = [(chat_id,) for chat_id, c in pending.items() if c is None]
        self._on_disk.update(chat_id for chat_id, c in pending.items() if c is not None)
        self._on_disk.difference_update(chat_id for chat_id, c in pending.items() if c is None)
        with self._lock:
            try:
                self._db.execute("BEGIN")
                if upserts:
                    self._db.executemany(
                        f"INSERT OR REPLACE INTO conversations ({_COLUMNS}) VALUES ({_PLACES})",
                        upserts,
                    )
                if deletes:
                    self._db.executemany("DELETE FROM conversations WHERE chat_id = ?", deletes)
                self._db.execute("COMMIT")
            except sqlite3.Error:
                self._db.execute("ROLLBACK")
                log.exception("could not persist %d conversation changes", len(pending))

    async def close(self) -> None:
        # Not cancelled: a write may be running in its thread, and the database must outlive it.
        if self._flusher is not None:
            await self._flusher
        await self.flush()

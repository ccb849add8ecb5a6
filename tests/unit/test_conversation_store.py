"""The SQLite conversation map: a store written by the version before owners existed opens and keeps working."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from kimi_free_api.core.ports import Conversation
from kimi_free_api.state.conversations import SqliteConversations
from kimi_free_api.state.sqlite import SqliteStore

_BEFORE_OWNERS = """
CREATE TABLE conversations (
    chat_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, token TEXT NOT NULL, message_id TEXT NOT NULL,
    key TEXT NOT NULL, expires_at REAL NOT NULL, writer TEXT NOT NULL
);
INSERT INTO conversations VALUES ('chat-old', 'acct', 'tok', 'msg', 'key', 1e300, '');
"""


async def test_an_older_store_gains_owner_and_attempts(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(_BEFORE_OWNERS)
    store = SqliteStore(path)
    conversations = SqliteConversations(store)
    old = await conversations.by_chat("chat-old")
    assert old == Conversation("chat-old", "acct", "tok", "msg", "key", 1e300, "", owner="", attempts=0)
    await conversations.put(Conversation("chat-new", "acct", "tok", owner="key-owner", attempts=2))
    await conversations.close()
    store.close()

    reopened = SqliteStore(path)
    try:
        again = SqliteConversations(reopened)
        found = await again.by_chat("chat-new")
        assert found is not None and (found.owner, found.attempts) == ("key-owner", 2)
    finally:
        reopened.close()

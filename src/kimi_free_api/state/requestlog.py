"""The request log in the SQLite file (core.access.requestlog.RequestLogStore), written in batches from a worker
thread."""

from __future__ import annotations

import asyncio
import time

from kimi_free_api.core.access.requestlog import LogEntry, LogQuery, Retention
from kimi_free_api.state.sqlite import SqliteStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS request_log (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    key_id TEXT NOT NULL,
    key_name TEXT NOT NULL,
    model TEXT NOT NULL,
    account_id TEXT NOT NULL,
    account_label TEXT NOT NULL,
    status INTEGER NOT NULL,
    first_content_ms REAL,
    duration_ms REAL NOT NULL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    prompt TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS request_log_at ON request_log (at);
"""
_COLUMNS = (
    "at",
    "method",
    "path",
    "key_id",
    "key_name",
    "model",
    "account_id",
    "account_label",
    "status",
    "first_content_ms",
    "duration_ms",
    "prompt_tokens",
    "completion_tokens",
    "prompt",
)
_INSERT = f"INSERT INTO request_log ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
# Filters in SQL; a status class ("4xx") is a range.
_FILTERS = {
    "key": "(key_id = :key OR key_name = :key)",
    "model": "model = :model",
    "account": "(account_id = :account OR account_label = :account)",
}


class SqliteRequestLog:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        with store.lock:
            store.db.executescript(_SCHEMA)

    async def append(self, entries: list[LogEntry], retention: Retention) -> None:
        await asyncio.to_thread(self._append, entries, retention)

    def _append(self, entries: list[LogEntry], retention: Retention) -> None:
        rows = [tuple(getattr(entry, column) for column in _COLUMNS) for entry in entries]
        with self._store.lock:
            db = self._store.db
            db.execute("BEGIN")
            db.executemany(_INSERT, rows)
            db.execute("DELETE FROM request_log WHERE at < ?", (time.time() - retention.max_age_s,))
            db.execute(
                "DELETE FROM request_log WHERE n <= (SELECT n FROM request_log ORDER BY n DESC LIMIT 1 OFFSET ?)",
                (retention.max_entries,),
            )
            db.execute("COMMIT")

    async def recent(self, query: LogQuery, retention: Retention) -> list[LogEntry]:
        return await asyncio.to_thread(self._recent, query, retention)

    def _recent(self, query: LogQuery, retention: Retention) -> list[LogEntry]:
        where = ["at >= :since"]
        params: dict[str, object] = {"since": time.time() - retention.max_age_s, "limit": query.limit}
        for name, clause in _FILTERS.items():
            value = getattr(query, name)
            if value:
                where.append(clause)
                params[name] = value
        if query.status:
            if query.status.endswith("xx"):
                low = int(query.status[0]) * 100
                where.append("status >= :low AND status < :high")
                params.update(low=low, high=low + 100)
            else:
                where.append("status = :status")
                params["status"] = int(query.status)
        sql = f"SELECT {', '.join(_COLUMNS)} FROM request_log WHERE {' AND '.join(where)} ORDER BY n DESC LIMIT :limit"
        with self._store.lock:
            rows = self._store.db.execute(sql, params).fetchall()
        return [LogEntry(**dict(zip(_COLUMNS, row, strict=True))) for row in rows]

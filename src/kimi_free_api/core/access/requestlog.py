"""The request log: one entry per API request, filled in while it runs and written to the state store later.

A request's entry is found through a context variable, so the pieces that learn something about the request (the
key check, the answer path, the usage count) record it without passing it around. Writing happens in batches from
one background task: a request only appends its finished entry to a list.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger(__name__)

# Finished entries waiting for the store; beyond this (the store is down) the oldest are dropped.
_BUFFER_MAX = 10_000


@dataclass(slots=True)
class LogEntry:
    at: float = field(default_factory=time.time)
    method: str = ""
    path: str = ""
    key_id: str = ""
    key_name: str = ""
    model: str = ""
    account_id: str = ""
    account_label: str = ""
    status: int = 0
    # Milliseconds from the request's arrival to the answer's first content, and to its end.
    first_content_ms: float | None = None
    duration_ms: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    # Only when REQUEST_LOG_PROMPTS is on.
    prompt: str = ""
    started: float = field(default_factory=time.monotonic, repr=False)

    def to_json(self) -> dict[str, object]:
        return {
            "at": round(self.at, 3),
            "method": self.method,
            "path": self.path,
            "key_id": self.key_id or None,
            "key_name": self.key_name or None,
            "model": self.model or None,
            "account_id": self.account_id or None,
            "account_label": self.account_label or None,
            "status": self.status,
            "first_content_ms": None if self.first_content_ms is None else round(self.first_content_ms, 1),
            "duration_ms": round(self.duration_ms, 1),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "prompt": self.prompt or None,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> LogEntry:
        def number(name: str) -> float | None:
            value = data.get(name)
            return float(value) if isinstance(value, int | float) else None

        def count(name: str) -> int | None:
            value = data.get(name)
            return int(value) if isinstance(value, int | float) else None

        def text(name: str) -> str:
            value = data.get(name)
            return value if isinstance(value, str) else ""

        return cls(
            at=number("at") or 0.0,
            method=text("method"),
            path=text("path"),
            key_id=text("key_id"),
            key_name=text("key_name"),
            model=text("model"),
            account_id=text("account_id"),
            account_label=text("account_label"),
            status=count("status") or 0,
            first_content_ms=number("first_content_ms"),
            duration_ms=number("duration_ms") or 0.0,
            prompt_tokens=count("prompt_tokens"),
            completion_tokens=count("completion_tokens"),
            prompt=text("prompt"),
        )

    def since_start_ms(self) -> float:
        return (time.monotonic() - self.started) * 1000


current_entry: ContextVar[LogEntry | None] = ContextVar("request_log_entry", default=None)


@dataclass(frozen=True, slots=True)
class LogQuery:
    """Empty fields match everything; `status` "2xx" style classes or an exact code."""

    key: str = ""
    model: str = ""
    account: str = ""
    status: str = ""
    limit: int = 100

    def matches(self, entry: LogEntry) -> bool:
        if self.key and self.key not in (entry.key_id, entry.key_name):
            return False
        if self.model and self.model != entry.model:
            return False
        if self.account and self.account not in (entry.account_id, entry.account_label):
            return False
        return not self.status or _status_matches(self.status, entry.status)


def _status_matches(wanted: str, status: int) -> bool:
    if len(wanted) == 3 and wanted.endswith("xx"):
        return str(status)[:1] == wanted[0]
    return wanted == str(status)


@dataclass(frozen=True, slots=True)
class Retention:
    max_entries: int = 10_000
    max_age_s: float = 7 * 24 * 3600.0


class RequestLogStore(Protocol):
    async def append(self, entries: list[LogEntry], retention: Retention) -> None:
        """Stores the entries and drops what the retention no longer keeps."""
        ...

    async def recent(self, query: LogQuery, retention: Retention) -> list[LogEntry]:
        """Newest first."""
        ...


class LogWriter:
    """Collects finished entries and writes them in batches, every `interval_s`, from its own task."""

    def __init__(self, store: RequestLogStore, retention: Retention, *, keep_prompts: bool, interval_s: float = 1.0):
        self.store = store
        self.retention = retention
        self.keep_prompts = keep_prompts
        self._interval_s = interval_s
        self._pending: deque[LogEntry] = deque(maxlen=_BUFFER_MAX)

    def add(self, entry: LogEntry) -> None:
        self._pending.append(entry)

    async def flush(self) -> None:
        if not self._pending:
            return
        batch = list(self._pending)
        self._pending.clear()
        try:
            await self.store.append(batch, self.retention)
        except Exception:  # the store is down: the log is best-effort, the requests themselves went through
            log.warning("could not write %d request log entries", len(batch), exc_info=True)

    async def recent(self, query: LogQuery) -> list[LogEntry]:
        await self.flush()  # what was just answered is shown at once
        return await self.store.recent(query, self.retention)

    async def run(self) -> None:
        try:
            while True:
                await asyncio.sleep(self._interval_s)
                await self.flush()
        finally:
            await self.flush()

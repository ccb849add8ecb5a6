"""What the emulator remembers: accounts, chats, per-endpoint counters and live streams."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

ENDPOINTS = (
    "refresh",
    "chat",
    "delete",
    "cancel",
    "models",
    "subscription",
    "subscription_stats",
    "list_chats",
    # file uploads: pre-signing, the bytes (presigned PUT or direct multipart), registration, parse polling
    "presign",
    "upload",
    "register",
    "parse",
)
MAX_RECORDED_REQUESTS = 10_000  # a long benchmark must not grow memory without bound


@dataclass(frozen=True)
class Account:
    user_id: str
    refresh_token: str
    access_token: str
    name: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "refresh_token": self.refresh_token,
            "access_token": self.access_token,
            "name": self.name,
        }


@dataclass
class Message:
    id: str
    role: str
    content: str
    parent_id: str
    status: str
    created: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "role": self.role,
            "content": self.content,
            "parent_id": self.parent_id,
            "status": self.status,
        }


@dataclass
class StoredObject:
    """What a presigned upload URL is for, and what arrived there (only the size and hash are kept)."""

    name: str
    owner: str
    file_id: str
    filename: str
    size: int = 0
    sha256: str = ""
    uploaded: bool = False


@dataclass
class UploadedFile:
    """A file Kimi knows: parsed once `parse_due` (a loop-independent wall-clock time) has passed."""

    id: str
    owner: str
    name: str
    size: int
    sha256: str
    kind: str  # "image" or "file"
    content_type: str
    parse_due: float
    failed: bool = False
    created: float = field(default_factory=time.time)

    @property
    def parsed(self) -> bool:
        return not self.failed and time.time() >= self.parse_due

    def to_json(self) -> dict[str, Any]:
        status = "failed" if self.failed else "parsed" if self.parsed else "parsing"
        return {
            "id": self.id,
            "owner": self.owner,
            "name": self.name,
            "size": self.size,
            "sha256": self.sha256,
            "kind": self.kind,
            "status": status,
        }


@dataclass
class Generation:
    """A reply being streamed; CancelChat flips `cancelled` and the stream notices before its next frame, or at
    once when it is in a long pause (Kimi stops a cancelled answer; it does not sit out its thinking time)."""

    message_id: str
    cancelled: bool = False
    stopped: asyncio.Event = field(default_factory=asyncio.Event)

    def cancel(self) -> None:
        self.cancelled = True
        self.stopped.set()


@dataclass
class Chat:
    id: str
    owner: str
    name: str = "Untitled Chat"
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    messages: list[Message] = field(default_factory=list)
    generation: Generation | None = None


class State:
    """Live and mutable. Attributes are the in-process view; `snapshot()` (or `state[key]`) is the JSON view."""

    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.clear()

    def clear(self) -> None:
        """Forget everything but the accounts."""
        self.chats: dict[str, Chat] = {}
        self.requests: dict[str, int] = dict.fromkeys(ENDPOINTS, 0)
        self.active_streams: dict[str, int] = {}
        self.max_concurrent_streams: dict[str, int] = {}
        # Chat streams opened per user: what GetSubscriptionStats counts as used (emulator/subscription.py).
        self.opened_streams: dict[str, int] = {}
        self.cancelled = 0
        self.deleted = 0
        self.disconnects = 0
        self.refreshes = 0
        self.files: dict[str, UploadedFile] = {}
        self.objects: dict[str, StoredObject] = {}
        # presigned uploads refused because they carried Kimi credentials (Authorization or Cookie)
        self.storage_rejections = 0
        self.chat_requests: deque[dict[str, Any]] = deque(maxlen=MAX_RECORDED_REQUESTS)

    @property
    def live_chats(self) -> int:
        return len(self.chats)

    def count(self, endpoint: str) -> None:
        self.requests[endpoint] += 1

    def owned_chat(self, chat_id: str, user_id: str) -> Chat | None:
        chat = self.chats.get(chat_id)
        return chat if chat is not None and chat.owner == user_id else None

    def stream_opened(self, user_id: str) -> None:
        active = self.active_streams.get(user_id, 0) + 1
        self.active_streams[user_id] = active
        self.max_concurrent_streams[user_id] = max(active, self.max_concurrent_streams.get(user_id, 0))
        self.opened_streams[user_id] = self.opened_streams.get(user_id, 0) + 1

    def stream_closed(self, user_id: str) -> None:
        self.active_streams[user_id] -= 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "live_chats": self.live_chats,
            "chats": [
                {"id": c.id, "owner": c.owner, "messages": [m.to_json() for m in c.messages]}
                for c in self.chats.values()
            ],
            "requests": dict(self.requests),
            "active_streams": dict(self.active_streams),
            "max_concurrent_streams": dict(self.max_concurrent_streams),
            "cancelled": self.cancelled,
            "deleted": self.deleted,
            "disconnects": self.disconnects,
            "refreshes": self.refreshes,
            "files": [file.to_json() for file in self.files.values()],
            "storage_rejections": self.storage_rejections,
        }

    def __getitem__(self, key: str) -> Any:
        return self.snapshot()[key]

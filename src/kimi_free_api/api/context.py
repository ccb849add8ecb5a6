"""Typed keys for what the composition root puts into the aiohttp application, and the small interfaces the
HTTP layer needs from the side packages (which it does not import)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from kimi_free_api.core.access.callers import Caller
from kimi_free_api.core.answer.service import ChatService
from kimi_free_api.core.attachments.files import FileService
from kimi_free_api.core.conversation.response_store import ResponseStore
from kimi_free_api.core.ports import KimiUpstream
from kimi_free_api.core.usage.usage import TokenCounter, Usage


class ApiKeys(Protocol):
    async def identify(self, key: str) -> Caller | None:
        """The key's caller (name and limits), or None for an unknown key."""
        ...


class AccountView(Protocol):
    def describe(self, now: float) -> dict[str, object]: ...


class PoolView(Protocol):
    def accounts(self) -> Sequence[AccountView]: ...

    def any_token(self, tokens: tuple[str, ...]) -> str | None: ...

    def server_tokens(self) -> tuple[str, ...]: ...


class AnswerMetrics(Protocol):
    """What the HTTP layer reports for /metrics and reads from it (metrics/gateway.py)."""

    @property
    def key(self) -> str:
        """The bearer GET /metrics asks for ("" = none)."""
        ...

    def counted(self, usage: Usage) -> None:
        """An answer's tokens (once per answer)."""
        ...

    def failed_after_headers(self, status: int) -> None:
        """The request's answer failed after its 200 went out: it is counted with this status instead."""
        ...

    def exposition(self) -> tuple[bytes, str] | None:
        """The scrape's body and content type; None when metrics are off."""
        ...


@dataclass(frozen=True, slots=True)
class Access:
    keys: ApiKeys
    # Whether clients may bring their own Kimi tokens (seed mode).
    client_tokens: bool
    # Bearer for GET /admin/*; empty disables the admin API.
    admin_key: str


SERVICE = web.AppKey("service", ChatService)
UPSTREAM = web.AppKey("upstream", KimiUpstream)
ACCESS = web.AppKey("access", Access)
POOL = web.AppKey("pool", PoolView)
FILES = web.AppKey("files", FileService)
TOKENS = web.AppKey("tokens", TokenCounter)
RESPONSES = web.AppKey("responses", ResponseStore)
METRICS = web.AppKey("metrics", AnswerMetrics)


def service_of(request: web.Request) -> ChatService:
    return request.app[SERVICE]

"""What the core needs from an upstream adapter. Adapters in `upstream/` implement it; the core never imports them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from kimi_free_api.core.events import ChatEvent
from kimi_free_api.core.modelspec import CatalogModel


@dataclass(slots=True, frozen=True)
class UpstreamChat:
    prompt: str
    chat_id: str = ""
    search: bool = False
    thinking: bool = False
    research: bool = False
    agent_id: str = ""
    scenario: str = ""
    agent_mode: str = ""


class KimiUpstream(Protocol):
    def chat(self, token: str, request: UpstreamChat) -> AsyncIterator[list[ChatEvent]]:
        """Streams the answer as batches of events. Raises `GatewayError`s; closing it early aborts the request.

        The first event is always `ChatStarted` once the upstream has accepted the request.
        """
        ...

    async def cancel_chat(self, token: str, chat_id: str, message_id: str) -> None: ...

    async def delete_chat(self, token: str, chat_id: str) -> None: ...

    async def available_models(self, token: str) -> list[CatalogModel]: ...

    async def check_token(self, token: str) -> bool: ...

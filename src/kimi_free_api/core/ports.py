"""What the core needs from an upstream adapter. Adapters in `upstream/` implement it; the core never imports them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from kimi_free_api.core.errors import GatewayError
from kimi_free_api.core.events import ChatEvent
from kimi_free_api.core.models.modelspec import CatalogModel


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
    # Kimi's ids of the files attached to this turn, uploaded beforehand (core/attachments/attachments.py).
    files: tuple[str, ...] = ()
    # When continuing a chat: the assistant message this turn answers (Kimi's `parent_id`).
    parent_id: str = ""
    # A current catalog entry's id (`options.model`) and effort level (`options.reasoning_effort`).
    model: str = ""
    reasoning_effort: str = ""


# Called synchronously for every batch of events in push mode; answering False stops the stream.
BatchSink = Callable[[list[ChatEvent]], bool]
EndSink = Callable[[GatewayError | None], None]


class UpstreamStream(Protocol):
    """One answer being streamed by the upstream.

    Pull batches with `next_batch()` (None once the answer is complete; failures raise `GatewayError`), or hand the
    rest of the stream to callbacks with `push()`, which runs them straight from the network callback: no task
    switch per frame, which is most of what relaying costs.
    """

    @property
    def chat_id(self) -> str: ...

    @property
    def message_id(self) -> str: ...

    @property
    def completed(self) -> bool:
        """The upstream stopped generating by itself (answer done, or it reported an error)."""
        ...

    async def next_batch(self) -> list[ChatEvent] | None: ...

    def push(self, on_batch: BatchSink, on_end: EndSink) -> None: ...

    def pause(self) -> None:
        """Stops reading from the upstream (the client is slower than Kimi)."""
        ...

    def resume(self) -> None: ...

    def close(self) -> None:
        """Aborts the upstream request if it is still running. Idempotent."""
        ...


class Lease(Protocol):
    """The right to use one Kimi account for one answer. Always `release()` it; report how the account did."""

    @property
    def token(self) -> str: ...

    @property
    def account_id(self) -> str: ...

    def succeeded(self) -> None: ...

    def failed(self, error: GatewayError) -> None: ...

    def release(self) -> None: ...


# Called while a request waits (for a free account, or for Kimi's first content), once per keep-alive interval.
WaitHook = Callable[[], Awaitable[None]]


class AccountPool(Protocol):
    def server_tokens(self) -> tuple[str, ...]:
        """The server's own accounts' tokens (server mode), e.g. to find which one owns an uploaded file."""
        ...

    async def acquire(
        self,
        tokens: tuple[str, ...],
        exclude: frozenset[str],
        wait_s: float,
        on_wait: WaitHook | None,
        only: str = "",
    ) -> Lease:
        """An account for one answer: among the client's Kimi `tokens`, or the server's accounts when empty.

        `only` pins the request to one account (the owner of a chat being continued). Waits up to `wait_s` for one
        to be free; raises `RateLimited` (with retry_after) when none frees up in time,
        `Unauthorized` when none is usable at all.
        """
        ...


@dataclass(slots=True)
class Conversation:
    """A Kimi chat this gateway keeps: who owns it, where it continues, and when it is deleted if left idle."""

    chat_id: str
    account_id: str
    # Kept so the chat can be deleted later, also after a restart; the store is private to the server (0600).
    token: str
    # The last assistant message: the next turn's parent.
    message_id: str = ""
    # The history key that continues this chat ("" while an answer is still being written).
    key: str = ""
    expires_at: float = 0.0
    # The process writing an answer into it right now; an orphan if that process is gone.
    writer: str = ""
    # Who may continue it (core/owners.py): the API key it was started with, "" for the client's own tokens.
    owner: str = ""
    # Failed attempts to delete it so far (core/janitor.py gives up after a bounded number).
    attempts: int = 0


class ConversationStore(Protocol):
    """The conversation map and the cleanup queue, shared by every gateway instance that uses the same store."""

    async def put(self, conversation: Conversation) -> None:
        """Records (or replaces) the conversation of `conversation.chat_id`, indexed by its key when it has one."""
        ...

    async def by_key(self, key: str) -> Conversation | None: ...

    async def by_chat(self, chat_id: str) -> Conversation | None: ...

    async def remove(self, chat_id: str) -> None: ...

    async def live_instances(self, instance: str, ttl_s: float) -> frozenset[str]:
        """Announces `instance` as alive for `ttl_s`; answers every instance alive now."""
        ...

    async def due(self, now: float, live_writers: frozenset[str], limit: int) -> list[Conversation]:
        """Chats to delete: idle past their expiry, or still marked as being written by a process that is gone."""
        ...


@dataclass(slots=True)
class CachedAccess:
    """An exchanged access token, kept so restarts and other instances need not exchange again."""

    access_token: str
    # Wall-clock expiry.
    expires_at: float
    # The newest refresh token for this credential when Kimi rotated it ("" while it is the one the client sent).
    refresh_token: str = ""


class TokenCache(Protocol):
    async def load(self, credential_id: str) -> CachedAccess | None: ...

    async def save(self, credential_id: str, entry: CachedAccess) -> None: ...


FailurePhase = Literal["start", "answer"]


class AnswerObserver(Protocol):
    """Told how answers start, for the gateway's metrics: once per answer or failed attempt, never per chunk."""

    def started(self, model: str, waited_s: float) -> None:
        """An answer's first content arrived `waited_s` after the start was asked for (waits and retries too)."""
        ...

    def upstream_failed(self, error: GatewayError, phase: FailurePhase) -> None:
        """An attempt to start an answer failed (`start`: it may still fail over to another account), or an answer
        broke off after it began (`answer`)."""
        ...


class KimiUpstream(Protocol):
    async def chat(self, token: str, request: UpstreamChat) -> UpstreamStream:
        """Starts the upstream answer; returns once Kimi accepted the request. Raises `GatewayError`."""
        ...

    async def cancel_chat(self, token: str, chat_id: str, message_id: str) -> None: ...

    async def delete_chat(self, token: str, chat_id: str) -> None: ...

    async def available_models(self, token: str) -> list[CatalogModel]: ...

    async def check_token(self, token: str) -> bool: ...

    async def keep_fresh(self, token: str, within_s: float) -> None:
        """Exchanges the token again now if its access token would expire within `within_s`."""
        ...

    async def renew_access(self, token: str, rejected_since: float) -> bool:
        """Drops the cached access token Kimi just rejected and exchanges again. False when `token` is not
        exchangeable (an access token the client sent itself), or when its access token was already exchanged after
        `rejected_since` (time.monotonic()) — e.g. for an HTTP 401, which the adapter answers with a refresh."""
        ...

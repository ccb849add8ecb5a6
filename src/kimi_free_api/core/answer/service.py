"""Orchestration of one chat completion: model, prompt, continuation, account choice and failover."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from dataclasses import dataclass

from kimi_free_api.core.answer.background import BackgroundTasks
from kimi_free_api.core.answer.run import ChatRun, upstream_chat
from kimi_free_api.core.attachments.attachments import Attachments, PreparedTurn
from kimi_free_api.core.conversation.continuity import resumption_points
from kimi_free_api.core.conversation.prompt import build_prompt, unanswered_tail
from kimi_free_api.core.errors import (
    ChatNotFound,
    GatewayError,
    ModelNotFound,
    RateLimited,
    Unauthorized,
    UpstreamError,
)
from kimi_free_api.core.guided.tool_protocol import output_directive
from kimi_free_api.core.models.aliases import ModelAliases
from kimi_free_api.core.models.catalog import ModelCatalog
from kimi_free_api.core.models.modelspec import ModelSpec, resolve_model
from kimi_free_api.core.ports import (
    AccountPool,
    AnswerObserver,
    Conversation,
    ConversationStore,
    KimiUpstream,
    WaitHook,
)
from kimi_free_api.core.request import ChatRequest, Message

log = logging.getLogger(__name__)

# Kimi chat ids are 20 characters of base32hex; the seed accepted any id embedded in conversation_id.
_CHAT_ID = re.compile(r"[0-9a-zA-Z]{20}")


def chat_id_in(conversation_id: str | None) -> str:
    if not conversation_id:
        return ""
    match = _CHAT_ID.search(conversation_id)
    return match.group(0) if match else ""


@dataclass(slots=True, frozen=True)
class FailoverPolicy:
    attempts: int = 3
    backoff_s: float = 0.25
    backoff_max_s: float = 2.0
    capacity_wait_s: float = 30.0

    def delay(self, attempt: int) -> float:
        # Full jitter: retries of many requests failing together do not arrive together.
        return random.uniform(0, min(self.backoff_max_s, self.backoff_s * 2**attempt))


def fails_over(error: GatewayError, continuing: bool) -> bool:
    """Whether another account (or another try) may succeed where this attempt failed before any output."""
    if isinstance(error, ChatNotFound):
        return continuing  # the conversation may belong to another of the client's accounts
    return isinstance(error, Unauthorized | RateLimited | UpstreamError)


class ChatService:
    def __init__(
        self,
        upstream: KimiUpstream,
        catalog: ModelCatalog,
        background: BackgroundTasks,
        pool: AccountPool,
        conversations: ConversationStore,
        *,
        attachments: Attachments,
        instance: str = "",
        conversation_ttl_s: float = 0.0,
        auto_delete: bool = True,
        open_grace_s: float = 15.0,
        failover: FailoverPolicy | None = None,
        keepalive_s: float = 15.0,
        aliases: ModelAliases | None = None,
        observer: AnswerObserver | None = None,
    ) -> None:
        self.keepalive_s = keepalive_s
        self.observer = observer
        self.aliases = aliases or ModelAliases()
        self.upstream = upstream
        self.pool = pool
        self.attachments = attachments
        self.conversations = conversations
        self.instance = instance
        self.conversation_ttl_s = conversation_ttl_s if auto_delete else 0.0
        self.failover = failover or FailoverPolicy()
        self.open_grace_s = open_grace_s
        self.catalog = catalog
        self.background = background
        self.auto_delete = auto_delete

    async def resolve_model(self, request: ChatRequest, token: str | None) -> ModelSpec:
        """Resolves with the cached catalog; only an unknown name costs a catalog fetch."""
        model = self.aliases.target(request.model)
        try:
            return resolve_model(model, self.catalog.cached, use_search=request.use_search, thinking=request.thinking)
        except ModelNotFound:
            if self.catalog.fresh():
                raise
        catalog = await self.catalog.get(token)
        return resolve_model(model, catalog, use_search=request.use_search, thinking=request.thinking)

    async def start(self, request: ChatRequest, on_wait: WaitHook | None = None) -> ChatRun:
        """Starts the answer: in the Kimi chat it continues when there is one, else in a new chat."""
        asked = time.perf_counter()
        run = await self._start_planned(request, on_wait)
        if self.observer is not None:
            self.observer.started(run.spec.name, time.perf_counter() - asked)
        return run

    async def _start_planned(self, request: ChatRequest, on_wait: WaitHook | None) -> ChatRun:
        plan = await self._plan(request)
        if plan.pinned is not None:
            try:
                return await self._begin(request, plan, on_wait)
            except GatewayError as error:
                if request.conversation_id is not None or not _resumable(error):
                    raise
                # The automatic continuation is a shortcut: when it is not available, send the whole history.
                log.info("could not continue chat %s (%s); sending the whole history", plan.chat_id, error.code)
                if isinstance(error, ChatNotFound):
                    await self.conversations.remove(plan.chat_id)
                plan = _Plan(request.messages)
        return await self._begin(request, plan, on_wait)

    async def _plan(self, request: ChatRequest) -> _Plan:
        explicit = chat_id_in(request.conversation_id)
        if explicit:
            owner = await self.conversations.by_chat(explicit)
            return _Plan(tuple(unanswered_tail(request.messages)) or request.messages[-1:], explicit, owner)
        if self.conversation_ttl_s > 0:
            now = time.time()
            for point in resumption_points(request.messages):
                found = await self.conversations.by_key(point.key)
                if found is not None and not found.writer and found.expires_at > now:
                    return _Plan(point.new_messages, found.chat_id, found)
        return _Plan(request.messages)

    async def _begin(self, request: ChatRequest, plan: _Plan, on_wait: WaitHook | None) -> ChatRun:
        """The attachments of the messages sent are loaded first and released once Kimi has them (a continued
        chat sends, and so uploads, only the messages Kimi has not seen)."""
        # An API-key client's files belong to the server's accounts: look for them there.
        tokens = request.tokens or (self.pool.server_tokens() if _names_files(plan.messages) else ())
        async with self.attachments.prepare(plan.messages, tokens) as turn:
            return await self._start(request, turn, plan, on_wait)

    async def _start(self, request: ChatRequest, turn: PreparedTurn, plan: _Plan, on_wait: WaitHook | None) -> ChatRun:
        """Starts the answer on a free account; before any output, failures move on to another account."""
        chat_id = plan.chat_id
        pinned = plan.pinned.account_id if plan.pinned is not None else ""
        parent_id = plan.pinned.message_id if plan.pinned is not None else ""
        prompt = build_prompt(turn.messages, output_directive(request.tools, request.output))
        keep = request.conversation_id is not None or not self.auto_delete
        policy = self.failover
        loop = asyncio.get_running_loop()
        deadline = loop.time() + policy.capacity_wait_s
        excluded: set[str] = set()
        last_error: GatewayError | None = None
        spec: ModelSpec | None = None
        for attempt in range(policy.attempts):
            try:
                lease = await self.pool.acquire(
                    turn.tokens, frozenset(excluded), max(0.0, deadline - loop.time()), on_wait, only=pinned
                )
            except GatewayError:
                if last_error is not None:
                    raise last_error from None
                raise
            run: ChatRun | None = None
            try:
                if spec is None:
                    spec = await self.resolve_model(request, lease.token)
                files = await turn.kimi_files(lease.token)
                run = ChatRun(self, lease, spec, prompt, keep, history=request.messages)
                await run.open(upstream_chat(prompt, chat_id, spec, files, parent_id), on_wait)
            except GatewayError as error:
                lease.failed(error)
                if self.observer is not None:
                    self.observer.upstream_failed(error, "start")
                if run is None:
                    lease.release()
                if not fails_over(error, continuing=bool(chat_id)) or attempt + 1 == policy.attempts:
                    raise
                log.info(
                    "attempt %d on account %s failed (%s); trying again", attempt + 1, lease.account_id, error.code
                )
                if not isinstance(error, UpstreamError):
                    excluded.add(lease.account_id)  # this account's own problem; a transient fault may pass
                last_error = error
                await asyncio.sleep(policy.delay(attempt))
                continue
            except BaseException:
                if run is None:
                    lease.release()
                raise
            lease.succeeded()
            return run
        raise AssertionError("unreachable: the last attempt either returns or raises")


def _names_files(messages: tuple[Message, ...]) -> bool:
    return any(ref.kind == "file_id" for message in messages for ref in message.attachments)


@dataclass(slots=True, frozen=True)
class _Plan:
    """What to send: the whole history in a new chat, or the new messages in a chat Kimi already holds."""

    messages: tuple[Message, ...]
    chat_id: str = ""
    # The stored conversation being continued: its account must answer.
    pinned: Conversation | None = None


def _resumable(error: GatewayError) -> bool:
    """Failures of a continuation that a fresh chat on any account can get past."""
    return isinstance(error, ChatNotFound | Unauthorized | RateLimited | UpstreamError)

"""Orchestration of one chat completion: model, prompt, continuation, account choice and failover."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, replace

from kimi_free_api.core.answer.background import BackgroundTasks
from kimi_free_api.core.answer.run import ChatRun, upstream_chat
from kimi_free_api.core.attachments.attachments import Attachments, PreparedTurn
from kimi_free_api.core.conversation.chat_ids import asks_new_chat, chat_id_in
from kimi_free_api.core.conversation.continuity import resumption_points
from kimi_free_api.core.conversation.oversize import HISTORY_FILE, fit_prompt
from kimi_free_api.core.conversation.prompt import unanswered_tail
from kimi_free_api.core.errors import (
    ChatNotFound,
    FreeTierOverloaded,
    GatewayError,
    ModelNotFound,
    RateLimited,
    Unauthorized,
    UpstreamError,
)
from kimi_free_api.core.guided.tool_protocol import output_directive
from kimi_free_api.core.models.aliases import ModelAliases
from kimi_free_api.core.models.catalog import ModelCatalog
from kimi_free_api.core.models.modelspec import CatalogModel, ModelSpec, resolve_model
from kimi_free_api.core.ports import (
    AccountPool,
    AnswerObserver,
    Conversation,
    ConversationStore,
    KimiUpstream,
    Lease,
    WaitHook,
)
from kimi_free_api.core.request import ChatRequest, Message

log = logging.getLogger(__name__)


@dataclass(slots=True, frozen=True)
class FailoverPolicy:
    attempts: int = 3
    backoff_s: float = 0.25
    backoff_max_s: float = 2.0
    capacity_wait_s: float = 30.0
    # Kimi's free-tier refusal names no wait; the client is told to come back after this long.
    free_tier_retry_after_s: float = 30.0
    # Tried once when Kimi refuses free accounts (e.g. an Instant model, which peak hours spare); "" tries none.
    overload_fallback_model: str = ""

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
        max_prompt_chars: int = 200_000,
        observer: AnswerObserver | None = None,
    ) -> None:
        self.max_prompt_chars = max_prompt_chars
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
            return _resolve(model, request, self.catalog.cached)
        except ModelNotFound:
            if self.catalog.fresh():
                raise
        return _resolve(model, request, await self.catalog.get(token))

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
        if request.conversation_id is not None and not explicit and not asks_new_chat(request.conversation_id):
            # Starting a new chat here would keep it upstream for good: the client could never name it again.
            raise ChatNotFound(
                "`conversation_id` is not a Kimi chat id: send the `id` of an earlier response to continue it, "
                'or "none" to start a chat that is kept.',
                param="conversation_id",
            )
        if explicit:
            kept = await self.conversations.by_chat(explicit)
            if not _may_continue(kept, request):
                raise ChatNotFound(f"No conversation {explicit!r} to continue.", param="conversation_id")
            return _Plan(tuple(unanswered_tail(request.messages)) or request.messages[-1:], explicit, kept)
        if self.conversation_ttl_s > 0:
            now = time.time()
            for point in resumption_points(request.messages):
                found = await self.conversations.by_key(point.key)
                if found is not None and found.owner == request.owner and not found.writer and found.expires_at > now:
                    return _Plan(point.new_messages, found.chat_id, found)
        return _Plan(request.messages)

    async def _begin(self, request: ChatRequest, plan: _Plan, on_wait: WaitHook | None) -> ChatRun:
        """The attachments of the messages sent are loaded first and released once Kimi has them (a continued
        chat sends, and so uploads, only the messages Kimi has not seen)."""
        # An API-key client's files belong to the server's accounts: look for them there.
        tokens = request.tokens or (self.pool.server_tokens() if _names_files(plan.messages) else ())
        async with self.attachments.prepare(plan.messages, tokens, request.owner) as turn:
            return await self._start(request, turn, plan, on_wait)

    async def _start(self, request: ChatRequest, turn: PreparedTurn, plan: _Plan, on_wait: WaitHook | None) -> ChatRun:
        """Starts the answer on a free account; before any output, failures move on to another account."""
        chat_id = plan.chat_id
        pinned = plan.pinned.account_id if plan.pinned is not None else ""
        parent_id = plan.pinned.message_id if plan.pinned is not None else ""
        fitted = fit_prompt(turn.messages, output_directive(request.tools, request.output), self.max_prompt_chars)
        prompt = fitted.prompt
        keep = request.conversation_id is not None or not self.auto_delete
        policy = self.failover
        loop = asyncio.get_running_loop()
        deadline = loop.time() + policy.capacity_wait_s
        excluded: set[str] = set()
        last_error: GatewayError | None = None
        spec: ModelSpec | None = None
        # Second chances that are not failovers: one renewed access token per account, one fallback model.
        renewed: set[str] = set()
        fell_back = False
        failures = 0
        while True:
            try:
                lease = await self.pool.acquire(
                    turn.tokens, frozenset(excluded), max(0.0, deadline - loop.time()), on_wait, only=pinned
                )
            except GatewayError:
                if last_error is not None:
                    raise last_error from None
                raise
            run: ChatRun | None = None
            sent_at = time.monotonic()
            try:
                if spec is None:
                    spec = await self.resolve_model(request, lease.token)
                files = await turn.kimi_files(lease.token)
                if fitted.history:
                    files += (await self.attachments.upload_text(lease.token, HISTORY_FILE, fitted.history),)
                run = ChatRun(self, lease, spec, fitted.counted, keep, history=request.messages, owner=request.owner)
                await run.open(upstream_chat(prompt, chat_id, spec, files, parent_id), on_wait)
            except GatewayError as error:
                renewing = isinstance(error, Unauthorized) and await self._renewed(lease, renewed, sent_at)
                if not renewing:
                    lease.failed(error)
                if self.observer is not None:
                    self.observer.upstream_failed(error, "start")
                if run is None:
                    lease.release()
                if renewing:
                    log.info("Kimi rejected account %s's access token; renewed it, sending again", lease.account_id)
                    continue
                if isinstance(error, FreeTierOverloaded):
                    # Every free account gets the same refusal: no failover, one quick answer.
                    fallback = None if fell_back else await self._overload_fallback(spec, lease.token)
                    if fallback is None:
                        raise self._overloaded(error) from None
                    log.info("Kimi refuses free accounts now; trying %s instead", fallback.name)
                    spec, fell_back = fallback, True
                    continue
                failures += 1
                if not fails_over(error, continuing=bool(chat_id)) or failures == policy.attempts:
                    raise
                log.info("attempt %d on account %s failed (%s); trying again", failures, lease.account_id, error.code)
                if not isinstance(error, UpstreamError):
                    excluded.add(lease.account_id)  # this account's own problem; a transient fault may pass
                last_error = error
                await asyncio.sleep(policy.delay(failures - 1))
                continue
            except BaseException:
                if run is None:
                    lease.release()
                raise
            lease.succeeded()
            run.fell_back = fell_back
            return run

    async def _renewed(self, lease: Lease, renewed: set[str], sent_at: float) -> bool:
        """Whether the account's access token, rejected inside a stream Kimi answered with HTTP 200, could be
        exchanged again; once per account and request, so only a second rejection marks the account dead."""
        if lease.account_id in renewed:
            return False
        renewed.add(lease.account_id)
        try:
            return await self.upstream.renew_access(lease.token, sent_at)
        except GatewayError as exc:
            log.info("renewing account %s's access token failed: %s", lease.account_id, exc.message)
            return False

    async def _overload_fallback(self, spec: ModelSpec | None, token: str) -> ModelSpec | None:
        name = self.failover.overload_fallback_model
        if not name or spec is None or spec.name.lower() == name.lower():
            return None
        catalog = await self.catalog.get(token)
        try:
            fallback = resolve_model(name, catalog, use_search=spec.search)
        except GatewayError as exc:
            log.warning("OVERLOAD_FALLBACK_MODEL %s is unusable: %s", name, exc.message)
            return None
        return replace(fallback, silent=spec.silent)

    def _overloaded(self, error: FreeTierOverloaded) -> FreeTierOverloaded:
        """One quick answer instead of a tour of every free account, each refused alike."""
        if error.retry_after is None:
            error.retry_after = self.failover.free_tier_retry_after_s
        return error


def _resolve(model: str, request: ChatRequest, catalog: dict[str, CatalogModel]) -> ModelSpec:
    return resolve_model(
        model,
        catalog,
        use_search=request.use_search,
        thinking=request.thinking,
        effort=request.reasoning_effort,
    )


def _may_continue(kept: Conversation | None, request: ChatRequest) -> bool:
    """Whether a client may write into the chat it names: its own kept chat, or with its own Kimi tokens also one
    this gateway does not know (Kimi lets only its account in). On the server's accounts, shared by every API key,
    an unknown chat may be another client's."""
    if kept is None:
        return bool(request.tokens)
    return kept.owner == request.owner


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

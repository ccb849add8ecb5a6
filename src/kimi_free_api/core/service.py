"""Orchestration of one chat completion: model, prompt, account, upstream stream, and cleanup afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TypeVar

from kimi_free_api.core.attachments import Attachments, PreparedTurn
from kimi_free_api.core.background import BackgroundTasks
from kimi_free_api.core.catalog import ModelCatalog
from kimi_free_api.core.continuity import reply_key, resumption_points
from kimi_free_api.core.errors import (
    ChatNotFound,
    GatewayError,
    ModelNotFound,
    RateLimited,
    Unauthorized,
    UpstreamError,
)
from kimi_free_api.core.events import ChatEvent, Finished, TextDelta, ThinkingDelta
from kimi_free_api.core.modelspec import ModelSpec, resolve_model
from kimi_free_api.core.ports import (
    AccountPool,
    BatchSink,
    Conversation,
    ConversationStore,
    KimiUpstream,
    Lease,
    UpstreamChat,
    UpstreamStream,
    WaitHook,
)
from kimi_free_api.core.prompt import build_prompt, unanswered_tail
from kimi_free_api.core.request import ChatRequest, Message
from kimi_free_api.core.tool_protocol import output_directive

log = logging.getLogger(__name__)

# Kimi chat ids are 20 characters of base32hex; the seed accepted any id embedded in conversation_id.
_CHAT_ID = re.compile(r"[0-9a-zA-Z]{20}")
_CONTENT_EVENTS = (TextDelta, ThinkingDelta, Finished)
_T = TypeVar("_T")


def chat_id_in(conversation_id: str | None) -> str:
    if not conversation_id:
        return ""
    match = _CHAT_ID.search(conversation_id)
    return match.group(0) if match else ""


class ChatRun:
    """One upstream answer in progress. Read it with `batches()` or `relay()`; always `close()` it."""

    def __init__(
        self,
        service: ChatService,
        lease: Lease,
        spec: ModelSpec,
        prompt: str,
        keep: bool,
        *,
        history: tuple[Message, ...] = (),
    ) -> None:
        self._service = service
        self._lease = lease
        self._token = lease.token
        self._history = history
        self._reply_key = ""
        self.spec = spec
        self.prompt = prompt
        self.keep = keep
        self.created = int(time.time())
        self._stream: UpstreamStream | None = None
        self._head: list[list[ChatEvent]] = []
        self._opening: asyncio.Future[None] | None = None
        self._closed = False

    @property
    def chat_id(self) -> str:
        return self._stream.chat_id if self._stream is not None else ""

    async def open(self, request: UpstreamChat, on_wait: WaitHook | None = None) -> None:
        """Starts the upstream answer and reads until its first content.

        Until then a failure can still become a plain HTTP error. The start runs shielded in its own task: a client
        that leaves before Kimi has even named the chat must not abort the read that tells which chat to delete.
        """
        self._opening = asyncio.ensure_future(self._start(request))
        try:
            await self._waiting(self._opening, on_wait)
            self._opening = None
            await self._mark_writing()
            stream = self._stream
            assert stream is not None
            while not any(isinstance(event, _CONTENT_EVENTS) for batch in self._head[-1:] for event in batch):
                batch = await self._waiting(asyncio.ensure_future(stream.next_batch()), on_wait)
                if batch is None:
                    return
                self._head.append(batch)
        except BaseException:
            await self.close()
            raise

    async def _waiting(self, step: asyncio.Future[_T], on_wait: WaitHook | None) -> _T:
        """Awaits a step of the start (shielded: see `open`), calling `on_wait` at every keep-alive interval."""
        while True:
            try:
                done, _ = await asyncio.wait((step,), timeout=self._service.keepalive_s if on_wait else None)
            except asyncio.CancelledError:
                if step is not self._opening:
                    step.cancel()  # the chat is known by now: close() can clean it up without this read
                raise
            if done:
                return step.result()
            assert on_wait is not None
            await on_wait()

    async def _mark_writing(self) -> None:
        """Records the chat before the answer is written into it: if this process dies meanwhile, the next one
        (or another instance) finds it and deletes it."""
        if self._stream is not None and self._stream.chat_id:
            await self._service.conversations.put(
                Conversation(self._stream.chat_id, self._lease.account_id, self._token, writer=self._service.instance)
            )

    def remember(self, reply: Message) -> None:
        """The answer reached the client whole: a later request repeating history + this reply continues here."""
        self._reply_key = reply_key(self._history, reply)

    async def follow_up(self, prompt: str, on_wait: WaitHook | None = None) -> ChatRun:
        """Another turn in this run's Kimi chat on the same account: the repair request when an answer broke the
        output protocol (core/guided.py). Call it once this run was read to the end; it hands its account lease
        and its chat over to the new run, which is the one to close."""
        stream = self._stream
        assert stream is not None and stream.chat_id, "open() first"
        self._closed = True
        run = ChatRun(self._service, self._lease, self.spec, prompt, self.keep, history=self._history)
        run.created = self.created
        try:
            await run.open(_upstream_chat(prompt, stream.chat_id, self.spec, (), stream.message_id), on_wait)
        except BaseException:
            if not run.chat_id:  # the new turn never reached Kimi, so nothing else cleans the chat up
                self._cleanup_later()
            raise
        stream.close()
        return run

    async def _start(self, request: UpstreamChat) -> None:
        self._stream = stream = await self._service.upstream.chat(self._token, request)
        while not stream.chat_id:
            batch = await stream.next_batch()
            if batch is None:
                return
            self._head.append(batch)

    async def batches(self) -> AsyncIterator[list[ChatEvent]]:
        """Pull mode, for answers returned whole."""
        assert self._stream is not None, "open() first"
        head, self._head = self._head, []
        for batch in head:
            yield batch
        try:
            while (more := await self._stream.next_batch()) is not None:
                yield more
        except GatewayError as exc:
            self._lease.failed(exc)
            raise

    def relay(self, on_batch: BatchSink) -> asyncio.Future[None]:
        """Push mode, for streams: `on_batch` runs straight from the network callback for every batch.

        The future resolves when the answer is complete, or fails with the `GatewayError` that ended it.
        """
        stream = self._stream
        assert stream is not None, "open() first"
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_end(error: GatewayError | None) -> None:
            if error is not None:
                self._lease.failed(error)
            if not done.done():
                if error is None:
                    done.set_result(None)
                else:
                    done.set_exception(error)

        head, self._head = self._head, []
        for batch in head:
            if not on_batch(batch):
                stream.close()
                on_end(None)
                return done
        stream.push(on_batch, on_end)
        return done

    def pause(self) -> None:
        if self._stream is not None:
            self._stream.pause()

    def resume(self) -> None:
        if self._stream is not None:
            self._stream.resume()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        opening, self._opening = self._opening, None
        if opening is not None and not opening.done():
            self._service.background.spawn(self._finish_opening(opening), name="finish-opening")
            return
        self._cleanup_later()

    async def _finish_opening(self, opening: asyncio.Future[None]) -> None:
        """The client left while the answer was starting: wait (briefly) for the chat id, then clean up."""
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(opening, self._service.open_grace_s)
        self._cleanup_later()

    def _cleanup_later(self) -> None:
        self._lease.release()
        stream = self._stream
        if stream is None:
            return
        # Read before closing: closing ourselves is not the upstream finishing.
        completed = stream.completed
        stream.close()
        if stream.chat_id:
            self._service.background.spawn(
                self._cleanup(stream.chat_id, stream.message_id, completed), name=f"cleanup-{stream.chat_id}"
            )

    async def _cleanup(self, chat_id: str, message_id: str, completed: bool) -> None:
        service = self._service
        if not completed:
            try:
                await service.upstream.cancel_chat(self._token, chat_id, message_id)
            except GatewayError as exc:
                log.warning("could not cancel upstream chat %s: %s", chat_id, exc.message)
        kept = Conversation(chat_id, self._lease.account_id, self._token, message_id, self._reply_key)
        if self.keep:
            kept.expires_at = float("inf")  # the client holds its id (conversation_id): never deleted by us
        elif completed and self._reply_key and service.conversation_ttl_s > 0:
            kept.expires_at = time.time() + service.conversation_ttl_s
        else:
            try:
                await service.upstream.delete_chat(self._token, chat_id)
            except GatewayError as exc:
                log.warning("could not delete chat %s now (%s); the sweeper retries", chat_id, exc.message)
                kept.expires_at = time.time()
            else:
                await service.conversations.remove(chat_id)
                return
        await service.conversations.put(kept)


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
    ) -> None:
        self.keepalive_s = keepalive_s
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
        try:
            return resolve_model(
                request.model, self.catalog.cached, use_search=request.use_search, thinking=request.thinking
            )
        except ModelNotFound:
            if self.catalog.fresh():
                raise
        catalog = await self.catalog.get(token)
        return resolve_model(request.model, catalog, use_search=request.use_search, thinking=request.thinking)

    async def start(self, request: ChatRequest, on_wait: WaitHook | None = None) -> ChatRun:
        """Starts the answer: in the Kimi chat it continues when there is one, else in a new chat."""
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
        async with self.attachments.prepare(plan.messages, request.tokens) as turn:
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
                await run.open(_upstream_chat(prompt, chat_id, spec, files, parent_id), on_wait)
            except GatewayError as error:
                lease.failed(error)
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


def _upstream_chat(prompt: str, chat_id: str, spec: ModelSpec, files: tuple[str, ...], parent_id: str) -> UpstreamChat:
    return UpstreamChat(
        prompt=prompt,
        chat_id=chat_id,
        search=spec.search,
        thinking=spec.thinking,
        research=spec.research,
        agent_id=spec.agent_id,
        scenario=spec.scenario,
        agent_mode=spec.agent_mode,
        files=files,
        parent_id=parent_id,
    )

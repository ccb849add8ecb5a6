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

from kimi_free_api.core.background import BackgroundTasks
from kimi_free_api.core.catalog import ModelCatalog
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
    KimiUpstream,
    Lease,
    UpstreamChat,
    UpstreamStream,
    WaitHook,
)
from kimi_free_api.core.prompt import build_prompt, unanswered_tail
from kimi_free_api.core.request import ChatRequest

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

    def __init__(self, service: ChatService, lease: Lease, spec: ModelSpec, prompt: str, keep: bool) -> None:
        self._service = service
        self._lease = lease
        self._token = lease.token
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
        upstream = self._service.upstream
        if not completed:
            try:
                await upstream.cancel_chat(self._token, chat_id, message_id)
            except GatewayError as exc:
                log.warning("could not cancel upstream chat %s: %s", chat_id, exc.message)
        if not self.keep:
            await upstream.delete_chat(self._token, chat_id)


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
        *,
        auto_delete: bool = True,
        open_grace_s: float = 15.0,
        failover: FailoverPolicy | None = None,
        keepalive_s: float = 15.0,
    ) -> None:
        self.keepalive_s = keepalive_s
        self.upstream = upstream
        self.pool = pool
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
        """Starts the answer on a free account; before any output, failures move on to another account."""
        chat_id = chat_id_in(request.conversation_id)
        messages = unanswered_tail(request.messages) if chat_id else request.messages
        prompt = build_prompt(messages or request.messages[-1:])
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
                    request.tokens, frozenset(excluded), max(0.0, deadline - loop.time()), on_wait
                )
            except GatewayError:
                if last_error is not None:
                    raise last_error from None
                raise
            run: ChatRun | None = None
            try:
                if spec is None:
                    spec = await self.resolve_model(request, lease.token)
                run = ChatRun(self, lease, spec, prompt, keep)
                await run.open(_upstream_chat(prompt, chat_id, spec), on_wait)
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


def _upstream_chat(prompt: str, chat_id: str, spec: ModelSpec) -> UpstreamChat:
    return UpstreamChat(
        prompt=prompt,
        chat_id=chat_id,
        search=spec.search,
        thinking=spec.thinking,
        research=spec.research,
        agent_id=spec.agent_id,
        scenario=spec.scenario,
        agent_mode=spec.agent_mode,
    )

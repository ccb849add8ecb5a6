"""One upstream answer in progress: its start, its reading (pull or push), and what happens to its chat after."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator
from typing import Protocol

from kimi_free_api.core.answer.background import BackgroundTasks
from kimi_free_api.core.conversation.continuity import reply_key
from kimi_free_api.core.errors import GatewayError
from kimi_free_api.core.events import ChatEvent, Finished, TextDelta, ThinkingDelta
from kimi_free_api.core.models.modelspec import ModelSpec
from kimi_free_api.core.ports import (
    AnswerObserver,
    BatchSink,
    Conversation,
    ConversationStore,
    KimiUpstream,
    Lease,
    UpstreamChat,
    UpstreamStream,
    WaitHook,
)
from kimi_free_api.core.request import Message

log = logging.getLogger(__name__)

_CONTENT_EVENTS = (TextDelta, ThinkingDelta, Finished)


class RunContext(Protocol):
    """What an answer needs from the service that started it."""

    upstream: KimiUpstream
    background: BackgroundTasks
    conversations: ConversationStore
    instance: str
    conversation_ttl_s: float
    open_grace_s: float
    keepalive_s: float
    observer: AnswerObserver | None


class ChatRun:
    """One upstream answer in progress. Read it with `batches()` or `relay()`; always `close()` it."""

    def __init__(
        self,
        service: RunContext,
        lease: Lease,
        spec: ModelSpec,
        prompt: str,
        keep: bool,
        *,
        history: tuple[Message, ...] = (),
        owner: str = "",
    ) -> None:
        self._service = service
        self._owner = owner
        self._lease = lease
        self._token = lease.token
        self._history = history
        self._reply_key = ""
        self.spec = spec
        self.prompt = prompt
        self.keep = keep
        # Set when Kimi refused the model asked for to free accounts and OVERLOAD_FALLBACK_MODEL's answered.
        self.fell_back = False
        self.created = int(time.time())
        self._stream: UpstreamStream | None = None
        self._head: list[list[ChatEvent]] = []
        self._opening: asyncio.Task[None] | None = None
        self._wake: asyncio.Future[None] | None = None
        self._closed = False

    @property
    def account_id(self) -> str:
        return self._lease.account_id

    @property
    def chat_id(self) -> str:
        return self._stream.chat_id if self._stream is not None else ""

    async def open(self, request: UpstreamChat, on_wait: WaitHook | None = None) -> None:
        """Starts the upstream answer and reads until its first content.

        Until then a failure can still become a plain HTTP error. The start runs in its own task, so that a client
        that leaves before Kimi has even named the chat cannot abort the read that tells which chat to delete.
        That task wakes this one directly when it ends: under load every extra hand-over (a done-callback, a
        `wait()`) costs a whole turn of a busy event loop before the first content goes out.
        """
        loop = asyncio.get_running_loop()
        self._opening = opening = loop.create_task(self._start(request))
        try:
            while not opening.done():
                self._wake = loop.create_future()
                timer = loop.call_later(self._service.keepalive_s, self._wake_up) if on_wait else None
                try:
                    await self._wake
                finally:
                    if timer is not None:
                        timer.cancel()
                if not opening.done() and on_wait is not None:
                    await on_wait()
            self._opening = None
            opening.result()
        except BaseException:
            await self.close()
            raise

    def _wake_up(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def _start(self, request: UpstreamChat) -> None:
        try:
            self._stream = stream = await self._service.upstream.chat(self._token, request)
            while not stream.chat_id:
                if not await self._read_head(stream):
                    return
            if self._closed:
                return  # the client left while Kimi was naming the chat: close() cleans it up now
            await self._mark_writing()
            while not any(isinstance(event, _CONTENT_EVENTS) for batch in self._head[-1:] for event in batch):
                if not await self._read_head(stream):
                    return
        finally:
            self._wake_up()

    async def _read_head(self, stream: UpstreamStream) -> bool:
        batch = await stream.next_batch()
        if batch is None:
            return False
        self._head.append(batch)
        return True

    async def _mark_writing(self) -> None:
        """Records the chat before the answer is written into it: if this process dies meanwhile, the next one
        (or another instance) finds it and deletes it."""
        if self._stream is not None and self._stream.chat_id:
            await self._service.conversations.put(
                Conversation(
                    self._stream.chat_id,
                    self._lease.account_id,
                    self._token,
                    writer=self._service.instance,
                    owner=self._owner,
                )
            )

    def remember(self, reply: Message) -> None:
        """The answer reached the client whole: a later request repeating history + this reply continues here."""
        if self.keep or self._service.conversation_ttl_s > 0:
            self._reply_key = reply_key(self._history, reply)

    async def follow_up(self, prompt: str, on_wait: WaitHook | None = None) -> ChatRun:
        """Another turn in this run's Kimi chat on the same account: the repair request when an answer broke the
        output protocol (core/guided/guided.py). Call it once this run was read to the end; it hands its account lease
        and its chat over to the new run, which is the one to close."""
        stream = self._stream
        assert stream is not None and stream.chat_id, "open() first"
        self._closed = True
        run = ChatRun(
            self._service, self._lease, self.spec, prompt, self.keep, history=self._history, owner=self._owner
        )
        run.created = self.created
        try:
            await run.open(upstream_chat(prompt, stream.chat_id, self.spec, (), stream.message_id), on_wait)
        except BaseException:
            if not run.chat_id:  # the new turn never reached Kimi, so nothing else cleans the chat up
                self._cleanup_later()
            raise
        stream.close()
        return run

    def take_head(self) -> list[list[ChatEvent]]:
        """The batches read while opening (up to the first content), for a caller that shows them itself: neither
        `batches()` nor `relay()` hands them out again."""
        head, self._head = self._head, []
        return head

    async def batches(self) -> AsyncGenerator[list[ChatEvent], None]:
        """Pull mode, for answers returned whole."""
        assert self._stream is not None, "open() first"
        head, self._head = self._head, []
        for batch in head:
            yield batch
        try:
            while (more := await self._stream.next_batch()) is not None:
                yield more
        except GatewayError as exc:
            self._failed(exc)
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
                self._failed(error)
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

    def _failed(self, error: GatewayError) -> None:
        """The answer broke off after it began: the account's health and the metrics hear of it."""
        self._lease.failed(error)
        if self._service.observer is not None:
            self._service.observer.upstream_failed(error, "answer")

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
        if opening is not None:
            if not opening.done():
                if not self.chat_id:
                    self._service.background.spawn(self._finish_opening(opening), name="finish-opening")
                    return
                opening.cancel()  # the chat is named: the rest of the start is not needed to clean it up
            elif not opening.cancelled():
                opening.exception()  # seen by open(), or nobody waits for it any more: not to be logged either way
        self._cleanup_later()

    async def _finish_opening(self, opening: asyncio.Task[None]) -> None:
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
        kept = Conversation(
            chat_id, self._lease.account_id, self._token, message_id, self._reply_key, owner=self._owner
        )
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


def upstream_chat(prompt: str, chat_id: str, spec: ModelSpec, files: tuple[str, ...], parent_id: str) -> UpstreamChat:
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
        model=spec.model,
        reasoning_effort=spec.reasoning_effort,
    )

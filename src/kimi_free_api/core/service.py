"""Orchestration of one chat completion: model, prompt, account, upstream stream, and cleanup afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections.abc import AsyncIterator

from kimi_free_api.core.background import BackgroundTasks
from kimi_free_api.core.catalog import ModelCatalog
from kimi_free_api.core.errors import GatewayError, ModelNotFound, Unauthorized
from kimi_free_api.core.events import ChatEvent, Finished, TextDelta, ThinkingDelta
from kimi_free_api.core.modelspec import ModelSpec, resolve_model
from kimi_free_api.core.ports import BatchSink, KimiUpstream, UpstreamChat, UpstreamStream
from kimi_free_api.core.prompt import build_prompt, unanswered_tail
from kimi_free_api.core.request import ChatRequest

log = logging.getLogger(__name__)

# Kimi chat ids are 20 characters of base32hex; the seed accepted any id embedded in conversation_id.
_CHAT_ID = re.compile(r"[0-9a-zA-Z]{20}")
_CONTENT_EVENTS = (TextDelta, ThinkingDelta, Finished)


def chat_id_in(conversation_id: str | None) -> str:
    if not conversation_id:
        return ""
    match = _CHAT_ID.search(conversation_id)
    return match.group(0) if match else ""


class ChatRun:
    """One upstream answer in progress. Read it with `batches()` or `relay()`; always `close()` it."""

    def __init__(self, service: ChatService, token: str, spec: ModelSpec, prompt: str, keep: bool) -> None:
        self._service = service
        self._token = token
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

    async def open(self, request: UpstreamChat) -> None:
        """Starts the upstream answer and reads until its first content.

        Until then a failure can still become a plain HTTP error. The start runs shielded in its own task: a client
        that leaves before Kimi has even named the chat must not abort the read that tells which chat to delete.
        """
        self._opening = asyncio.ensure_future(self._start(request))
        try:
            await asyncio.shield(self._opening)
            self._opening = None
            stream = self._stream
            assert stream is not None
            while not any(isinstance(event, _CONTENT_EVENTS) for batch in self._head[-1:] for event in batch):
                batch = await stream.next_batch()
                if batch is None:
                    return
                self._head.append(batch)
        except BaseException:
            await self.close()
            raise

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
        while (more := await self._stream.next_batch()) is not None:
            yield more

    def relay(self, on_batch: BatchSink) -> asyncio.Future[None]:
        """Push mode, for streams: `on_batch` runs straight from the network callback for every batch.

        The future resolves when the answer is complete, or fails with the `GatewayError` that ended it.
        """
        stream = self._stream
        assert stream is not None, "open() first"
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_end(error: GatewayError | None) -> None:
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


class ChatService:
    def __init__(
        self,
        upstream: KimiUpstream,
        catalog: ModelCatalog,
        background: BackgroundTasks,
        *,
        auto_delete: bool = True,
        open_grace_s: float = 15.0,
    ) -> None:
        self.upstream = upstream
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

    async def start(self, request: ChatRequest) -> ChatRun:
        if not request.tokens:
            raise Unauthorized("No Kimi token: send `Authorization: Bearer <refresh_token or access token>`.")
        token = random.choice(request.tokens)
        spec = await self.resolve_model(request, token)
        chat_id = chat_id_in(request.conversation_id)
        messages = unanswered_tail(request.messages) if chat_id else request.messages
        if not messages:
            messages = request.messages[-1:]
        prompt = build_prompt(messages)
        keep = request.conversation_id is not None or not self.auto_delete
        run = ChatRun(self, token, spec, prompt, keep)
        upstream_request = UpstreamChat(
            prompt=prompt,
            chat_id=chat_id,
            search=spec.search,
            thinking=spec.thinking,
            research=spec.research,
            agent_id=spec.agent_id,
            scenario=spec.scenario,
            agent_mode=spec.agent_mode,
        )
        await run.open(upstream_request)
        return run

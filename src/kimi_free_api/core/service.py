"""Orchestration of one chat completion: model, prompt, account, upstream stream, and cleanup afterwards."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import AsyncIterator

from kimi_free_api.core.background import BackgroundTasks
from kimi_free_api.core.catalog import ModelCatalog
from kimi_free_api.core.errors import GatewayError, ModelNotFound, Unauthorized, UpstreamTimeout
from kimi_free_api.core.events import ChatEvent, ChatStarted, Finished, TextDelta, ThinkingDelta
from kimi_free_api.core.modelspec import ModelSpec, resolve_model
from kimi_free_api.core.ports import KimiUpstream, UpstreamChat
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
    """One upstream answer in progress. Iterate it for event batches; always `close()` it."""

    def __init__(
        self,
        service: ChatService,
        token: str,
        spec: ModelSpec,
        prompt: str,
        keep: bool,
    ) -> None:
        self._service = service
        self._token = token
        self.spec = spec
        self.prompt = prompt
        self.keep = keep
        self.created = int(time.time())
        self.chat_id = ""
        self.message_id = ""
        self._stream: AsyncIterator[list[ChatEvent]] | None = None
        self._head: list[list[ChatEvent]] = []
        self._pending: asyncio.Future[list[ChatEvent]] | None = None
        self._upstream_done = False
        self._closed = False

    async def open(self, stream: AsyncIterator[list[ChatEvent]]) -> None:
        """Reads until the first content arrives, so failures before it can still become a plain HTTP error.

        Each read runs shielded in its own task: a client that leaves before Kimi has even named the chat must not
        abort the read that would tell us which chat to delete.
        """
        self._stream = stream
        try:
            while True:
                self._pending = asyncio.ensure_future(anext(stream))
                try:
                    batch = await asyncio.shield(self._pending)
                except StopAsyncIteration:
                    return
                self._pending = None
                self._head.append(batch)
                self._note(batch)
                if any(isinstance(event, _CONTENT_EVENTS) for event in batch):
                    return
        except BaseException as exc:
            self._note_failure(exc)
            await self.close()
            raise

    def _note(self, batch: list[ChatEvent]) -> None:
        first = batch[0]
        if type(first) is ChatStarted:
            self.chat_id = first.chat_id
            self.message_id = first.message_id
        last = batch[-1]
        if type(last) is Finished:
            self._upstream_done = True
            self.message_id = last.message_id or self.message_id

    def _note_failure(self, exc: BaseException) -> None:
        # A stall may leave Kimi still generating; any other upstream error means its stream is over.
        if isinstance(exc, GatewayError) and not isinstance(exc, UpstreamTimeout):
            self._upstream_done = True

    async def __aiter__(self) -> AsyncIterator[list[ChatEvent]]:
        assert self._stream is not None, "open() first"
        head, self._head = self._head, []
        for batch in head:
            yield batch
        try:
            async for batch in self._stream:
                if type(batch[-1]) is Finished or type(batch[0]) is ChatStarted:
                    self._note(batch)
                yield batch
        except BaseException as exc:
            self._note_failure(exc)
            raise

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        pending, self._pending = self._pending, None
        if pending is not None and not pending.done():
            self._service.background.spawn(self._finish_opening(pending), name="finish-opening")
            return
        await self._aclose_stream()
        if self.chat_id:
            self._service.background.spawn(self._cleanup(), name=f"cleanup-{self.chat_id}")

    async def _finish_opening(self, pending: asyncio.Future[list[ChatEvent]]) -> None:
        """The client left mid-open: wait (briefly) for the chat id, then cancel and delete that chat."""
        try:
            self._note(await asyncio.wait_for(pending, self._service.open_grace_s))
        except (Exception, asyncio.CancelledError) as exc:
            self._note_failure(exc)
        await self._aclose_stream()
        if self.chat_id:
            await self._cleanup()

    async def _aclose_stream(self) -> None:
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            await aclose()

    async def _cleanup(self) -> None:
        upstream = self._service.upstream
        if not self._upstream_done:
            try:
                await upstream.cancel_chat(self._token, self.chat_id, self.message_id)
            except GatewayError as exc:
                log.warning("could not cancel upstream chat %s: %s", self.chat_id, exc.message)
        if not self.keep:
            await upstream.delete_chat(self._token, self.chat_id)


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
        await run.open(self.upstream.chat(token, upstream_request))
        return run

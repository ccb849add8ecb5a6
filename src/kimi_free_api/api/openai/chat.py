"""POST /v1/chat/completions: one Kimi answer, streamed as OpenAI chunks or returned as one completion."""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import replace

from aiohttp import web

from kimi_free_api.api.answer import ShownAnswer
from kimi_free_api.api.answering import answered, counted, read_answer, shown_model, stream_answer, unshown_usage
from kimi_free_api.api.auth import caller
from kimi_free_api.api.body import json_body
from kimi_free_api.api.context import TOKENS, service_of
from kimi_free_api.api.keepalive import KEEPALIVE, EarlyStart
from kimi_free_api.api.openai.guided_chat import ChatReply, completion, failure, guided_completion
from kimi_free_api.api.openai.schemas import parse_chat_request
from kimi_free_api.api.openai.sse import ChunkRenderer, completion_id
from kimi_free_api.core.answer.run import ChatRun
from kimi_free_api.core.errors import ContentFiltered
from kimi_free_api.core.events import ChatEvent, Finished, SearchResult, TextDelta, ThinkingDelta
from kimi_free_api.core.request import ChatRequest

log = logging.getLogger(__name__)

# Client write-buffer levels (bytes) at which Kimi is paused and resumed for a slow reader.
_HIGH_WATER = 256 * 1024
_LOW_WATER = 64 * 1024


async def chat_completions(request: web.Request) -> web.StreamResponse:
    tokens, owner = await caller(request)  # a refused caller's body is never read
    body = await json_body(request)
    chat = replace(parse_chat_request(body, tokens), owner=owner)
    return await answered(request, chat, failure, functools.partial(_respond, request, chat))


async def _respond(
    request: web.Request, chat: ChatRequest, run: ChatRun, early: EarlyStart | None
) -> web.StreamResponse:
    if chat.guided:  # tools or JSON output: a checked answer, off the relay hot path
        return await guided_completion(request, chat, run, early)
    if early is not None:
        return await _stream(request, chat, run, early)
    reply = ChatReply(chat, run, None)
    await read_answer(run.batches(), reply, None)
    return completion(chat, run, reply, counted(request, await reply.answer.usage(request.app[TOKENS], run.prompt)))


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


class _ChunkSink:
    """Renders event batches to SSE chunks and writes them to the client, synchronously, from the upstream's
    network callback (`ChatRun.relay`). The response headers and first chunk went through aiohttp already, so the
    body's framing is settled: on HTTP/1.1 each write here is one chunk of its chunked encoding; on HTTP/1.0 (curl
    --http1.0, nginx's default proxying) there is no chunked encoding, and the bytes go out as they are until the
    connection closes."""

    __slots__ = (
        "_answer",
        "_chunked",
        "_keepalive_s",
        "_last_write",
        "_loop",
        "_pause",
        "_render",
        "_run",
        "_transport",
    )

    def __init__(
        self,
        request: web.Request,
        response: web.StreamResponse,
        render: ChunkRenderer,
        answer: ShownAnswer,
        run: ChatRun,
        *,
        keepalive_s: float,
    ) -> None:
        self._transport = request.transport
        self._chunked = response.headers.get("Transfer-Encoding", "").lower() == "chunked"
        self._keepalive_s = keepalive_s
        self._loop = asyncio.get_running_loop()
        self._last_write = self._loop.time()
        self._render = render
        self._answer = answer
        self._run = run
        self._pause: asyncio.Future[None] | None = None

    def __call__(self, batch: list[ChatEvent]) -> bool:
        transport = self._transport
        if transport is None or transport.is_closing():
            return False  # the client left: stop the upstream
        data = self.render(batch)
        if data:
            self._write(transport, data)
            if transport.get_write_buffer_size() > _HIGH_WATER and self._pause is not None:
                log.debug("client reads slower than Kimi writes: pausing the upstream stream")
                self._run.pause()
                if not self._pause.done():
                    self._pause.set_result(None)
        return not self._answer.cut

    def _write(self, transport: asyncio.Transport, data: bytes) -> None:
        transport.write(_chunked(data) if self._chunked else data)
        self._last_write = self._loop.time()

    def render(self, batch: list[ChatEvent]) -> bytes:
        """The batch's SSE chunks; the answer keeps count of what was shown."""
        render = self._render
        answer = self._answer
        out: list[bytes] = []
        for event in batch:
            kind = type(event)
            if kind is TextDelta:
                text = answer.add_text(event.text)  # type: ignore[union-attr]
                if text:
                    out.append(render.content(text))
            elif kind is ThinkingDelta:
                answer.reasoning.append(event.text)  # type: ignore[union-attr]
                out.append(render.reasoning(event.text))  # type: ignore[union-attr]
            elif kind is SearchResult:
                line = answer.add_search(event)  # type: ignore[arg-type]
                if line:
                    out.append(render.content(line))
            elif kind is Finished:
                answer.reason = event.reason  # type: ignore[union-attr]
        return b"".join(out)

    async def until(self, done: asyncio.Future[None]) -> None:
        """Waits for the end of the answer, pausing Kimi while the client is too slow to keep up, and sends a
        keep-alive comment once KEEPALIVE_S passed since the last write (Kimi searching or thinking in silence)."""
        loop = self._loop
        while True:
            self._pause = loop.create_future()
            silent_for = loop.time() - self._last_write
            await asyncio.wait(
                (done, self._pause),
                timeout=max(0.0, self._keepalive_s - silent_for),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if done.done():
                return done.result()
            if not self._pause.done():
                transport = self._transport
                if loop.time() - self._last_write >= self._keepalive_s and transport and not transport.is_closing():
                    self._write(transport, KEEPALIVE)
                continue
            transport = self._transport
            while transport is not None and not transport.is_closing():
                if transport.get_write_buffer_size() <= _LOW_WATER:
                    break
                await asyncio.sleep(0.005)
            self._run.resume()


async def _stream(request: web.Request, chat: ChatRequest, run: ChatRun, early: EarlyStart) -> web.StreamResponse:
    response = await early.prepared()
    render = ChunkRenderer(completion_id(run), run.created, shown_model(chat, run), chat.include_usage)
    answer = ShownAnswer(chat, run)
    sink = _ChunkSink(request, response, render, answer, run, keepalive_s=service_of(request).keepalive_s)

    async def relay() -> None:
        try:
            await sink.until(run.relay(sink))
        except ContentFiltered:
            answer.reason = "content_filter"

    async def closing() -> bytes:
        tail = answer.finish()
        answer.remember(run, answer.text.joined())
        usage = None
        if chat.include_usage:
            usage = counted(request, await answer.usage(request.app[TOKENS], run.prompt))
        else:
            unshown_usage(request, answer, run.prompt)
        return render.ending(tail, answer.reason, usage)

    # The role chunk and the answer's first words (read while opening) share one write, and one send().
    opening = render.role() + b"".join(sink.render(batch) for batch in run.take_head())
    return await stream_answer(request, response, opening, relay, closing, failure=failure)

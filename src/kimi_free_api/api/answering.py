"""One answer's path from start to close, the same on every surface; a surface only renders.

`answered` starts the answer (failover, the surface's keep-alives while a stream waits) and closes it afterwards; a
start that fails after a stream's headers went out is reported with the surface's own failure event. `read_answer` reads
the events into the surface's `Rendering`; `stream_answer` writes a streamed answer around that reading, with a
failure reported as an event, never as a silent close. Plain streamed chat completions relay Kimi's frames from the
network callback instead of reading them (api/openai/chat.py), but start, end and fail the same way.

With WHOLE_ANSWER_KEEPALIVE_S set, `answered` also keeps a non-streamed answer alive over its whole wait (start,
reading, a repair round), so the surfaces' non-streamed paths need nothing of their own: once its headers went out,
the body the surface returns (or its error response's body) is written after the keep-alive spaces.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from typing import Protocol

from aiohttp import web

from kimi_free_api.api.answer import ShownAnswer
from kimi_free_api.api.context import METRICS, service_of
from kimi_free_api.api.errors import answer_failures, error_response
from kimi_free_api.api.keepalive import (
    SSE_COMMENTS,
    WHOLE_ANSWER_KEEPALIVE_S,
    EarlyStart,
    QuietWriter,
    StreamStyle,
    whole_answer,
)
from kimi_free_api.api.metering import answer_slot, answer_started, failed_in_stream
from kimi_free_api.core.answer.run import ChatRun
from kimi_free_api.core.errors import ContentFiltered, GatewayError
from kimi_free_api.core.events import ChatEvent
from kimi_free_api.core.guided.guided import GuidedAnswer, GuidedEvent, new_call_id
from kimi_free_api.core.request import ChatRequest
from kimi_free_api.core.usage.tokenizer import EstimateCounter
from kimi_free_api.core.usage.usage import Usage

_ESTIMATE = EstimateCounter()

# A failure after the stream's headers went out, as the bytes of the surface's own failure event(s).
FailureEvent = Callable[[GatewayError], bytes]
# A failure as the surface's ordinary error response (status, error object).
ErrorResponse = Callable[[GatewayError], web.Response]


class Rendering(Protocol):
    """A surface's view of one answer being read: it keeps what its body needs and renders what a stream shows."""

    def take(self, batch: Sequence[GuidedEvent]) -> bytes:
        """The bytes a stream sends for this batch (b"" for nothing, and always when not streaming)."""
        ...

    @property
    def cut(self) -> bool:
        """Whether a stop sequence or the token budget ended the answer: reading stops there."""
        ...

    def filtered(self) -> None:
        """Kimi's content filter ended the answer."""
        ...


async def answered(
    request: web.Request,
    chat: ChatRequest,
    failed_to_start: FailureEvent,
    respond: Callable[[ChatRun, EarlyStart | None], Awaitable[web.StreamResponse]],
    style: StreamStyle = SSE_COMMENTS,
    *,
    error: ErrorResponse = error_response,
) -> web.StreamResponse:
    """Starts the answer, hands it to `respond` (with the stream's early start, in the surface's `style`, when
    `chat.stream`), closes it after.

    A start that fails before anything was sent is raised, to become the surface's ordinary HTTP error (`error`
    renders it when a non-streamed answer's headers are gone already). The API key's model list and
    concurrent-answer limit hold for the whole answer (api/metering.py)."""
    async with answer_slot(request, chat):
        answering = _start_and_respond(request, chat, failed_to_start, respond, style)
        patience_s = request.app.get(WHOLE_ANSWER_KEEPALIVE_S, 0.0)
        if chat.stream or not patience_s:
            return await answering
        return await _kept_alive(request, EarlyStart(request, whole_answer(style), patience_s), answering, error)


async def _kept_alive(
    request: web.Request, early: EarlyStart, answering: Awaitable[web.StreamResponse], error: ErrorResponse
) -> web.StreamResponse:
    """A non-streamed answer whose headers go out once it was silent for `early`'s interval, then a space after
    every further interval; its body (or error body) follows. An answer faster than that is returned untouched.

    Any failure becomes the surface's error response first (as its middleware would make it), since the status
    may be gone already; then only the body is left to tell it, and the request log takes its status from it."""

    def failed(exc: GatewayError) -> web.Response:
        if early.response is not None:
            failed_in_stream(request, exc)
        return error(exc)

    async with early.ticking():
        response = await answer_failures(request, lambda _: answering, failed)
    if early.response is None:
        return response
    # Non-streamed answers and error responses are whole bytes (orjson).
    assert isinstance(response, web.Response) and isinstance(response.body, bytes)
    with contextlib.suppress(ConnectionError):
        await early.response.write(response.body)
        await early.response.write_eof()
    return early.response


async def _start_and_respond(
    request: web.Request,
    chat: ChatRequest,
    failed_to_start: FailureEvent,
    respond: Callable[[ChatRun, EarlyStart | None], Awaitable[web.StreamResponse]],
    style: StreamStyle,
) -> web.StreamResponse:
    early = EarlyStart(request, style) if chat.stream else None
    try:
        start = service_of(request).start(chat)
        run = await (early.during(start) if early else start)
    except GatewayError as exc:
        if early is None or early.response is None:
            raise
        failed_in_stream(request, exc)
        with contextlib.suppress(ConnectionError):
            await early.response.write(failed_to_start(exc))
            await early.response.write_eof()
        return early.response
    answer_started(request, run)
    try:
        return await respond(run, early)
    finally:
        await run.close()


def shown_model(chat: ChatRequest, run: ChatRun) -> str:
    """The model an answer names: the one asked for, or the fallback that answered when Kimi refused that one to
    free accounts (OVERLOAD_FALLBACK_MODEL), so the client can tell which model it got."""
    return run.spec.name if run.fell_back else chat.model


def counted(request: web.Request, usage: Usage) -> Usage:
    """The usage an answer is shown with, counted in /metrics as well."""
    request.app[METRICS].counted(usage)
    return usage


def unshown_usage(request: web.Request, answer: ShownAnswer, prompt: str) -> None:
    """A stream that shows no usage still counts its tokens in /metrics, by the estimate: counting them exactly
    would cost every such stream a pass of the BPE engine over its prompt and answer."""
    request.app[METRICS].counted(Usage.count(_ESTIMATE, prompt, answer.text.joined(), answer.reasoning.joined()))


@contextlib.asynccontextmanager
async def guided_answer(
    chat: ChatRequest, run: ChatRun, new_id: Callable[[], str] = new_call_id
) -> AsyncIterator[GuidedAnswer]:
    """The answer checked for the tools or JSON output `chat` declares (core/guided/guided.py); `new_id` names its
    tool calls in the surface's own format."""
    guided = GuidedAnswer(run, chat.tools, chat.output, live=chat.stream, new_id=new_id)
    try:
        yield guided
    finally:
        await guided.run.close()  # the repair's run, if there was one (`answered` closes the first)


async def read_answer(
    batches: AsyncGenerator[Sequence[ChatEvent | GuidedEvent], None], rendering: Rendering, writer: QuietWriter | None
) -> None:
    """Reads the answer into `rendering`, writing what it renders when there is a `writer` (which keeps the
    connection alive meanwhile), until the answer ends or is cut."""
    ticking = writer.ticking() if writer is not None else contextlib.nullcontext()
    try:
        async with ticking, contextlib.aclosing(batches) as reading:
            async for batch in reading:
                data = rendering.take(batch)
                if data and writer is not None:
                    await writer.write(data)
                if rendering.cut:
                    break
    except ContentFiltered:
        rendering.filtered()


def guided_batches(guided: GuidedAnswer, writer: QuietWriter | None) -> AsyncGenerator[list[GuidedEvent], None]:
    """The checked answer's batches; a repair round waiting for an account keeps the stream alive."""
    return guided.batches(writer.keepalive if writer is not None else None)


async def stream_answer(
    request: web.Request,
    response: web.StreamResponse,
    opening: bytes,
    read: Callable[[], Awaitable[None]],
    closing: Callable[[], Awaitable[bytes]],
    *,
    failure: FailureEvent,
) -> web.StreamResponse:
    """Writes a streamed answer on its prepared `response`: the `opening`, what `read` writes, then the `closing`.

    The headers are gone already, so a failure travels as the surface's `failure` event; a client that left ends
    the stream quietly (closing the run cleans up upstream)."""
    try:
        await response.write(opening)
        await read()
        ending = await closing()
    except GatewayError as exc:
        failed_in_stream(request, exc)
        ending = failure(exc)
    except ConnectionError:
        return response
    with contextlib.suppress(ConnectionError):
        await response.write(ending)
        await response.write_eof()
    return response

"""Server-sent events every surface shares: the response headers, and keeping a waiting connection alive (for
streams that are not relayed frame by frame).

Proxies and clients give up on a connection that stays silent too long, so a keep-alive goes out whenever
KEEPALIVE_S passed since the last write (or since the request arrived): the clock is the silence itself, not a
fixed period, which could let almost two intervals pass without a byte.

A surface that says nothing keeps its streams alive with SSE comments, which every SSE client ignores; one whose
clients expect an event of their own during silences, or an opening event before any wait, says so with a
`StreamStyle`.

A non-streamed answer can be kept alive the same way (WHOLE_ANSWER_KEEPALIVE_S, off by default): its JSON body
begins early, with spaces during silences, which every JSON parser skips before the value (`whole_answer`).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from aiohttp import web

from kimi_free_api.api.context import service_of

# An SSE comment: ignored by every client as long as the stream never sends `id:` lines (it does not).
KEEPALIVE = b": keep-alive\n\n"
STREAM_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    # Stops nginx (and similar proxies) from buffering the stream.
    "X-Accel-Buffering": "no",
}

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StreamStyle:
    """How a surface's stream begins and stays alive."""

    # Sent whenever the stream has been silent for a keep-alive interval.
    keepalive: bytes = KEEPALIVE
    # Sent right after the headers, before anything else (even before the first keep-alive of a wait).
    opening: bytes = b""
    # Headers the surface adds to `STREAM_HEADERS`.
    headers: Mapping[str, str] = field(default_factory=dict)


SSE_COMMENTS = StreamStyle()

# The silence after which a non-streamed answer's headers go out (0: never; config.py says why that is the default).
WHOLE_ANSWER_KEEPALIVE_S = web.AppKey("whole_answer_keepalive_s", float)
# Whitespace before a JSON value leaves the body valid for every parser.
JSON_KEEPALIVE = b" "


def whole_answer(style: StreamStyle) -> StreamStyle:
    """The style of a non-streamed answer's early start: a JSON body (with the surface's own headers) kept alive by
    spaces, and no opening, since the body is written whole at the end."""
    return StreamStyle(keepalive=JSON_KEEPALIVE, headers={**style.headers, "Content-Type": "application/json"})


class _SilenceClock(abc.ABC):
    """Calls `on_silence` each time `interval_s` passed without a `touch()`, while `ticking()`."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._loop = asyncio.get_running_loop()
        self.last_write = self._loop.time()

    def touch(self) -> None:
        self.last_write = self._loop.time()

    @abc.abstractmethod
    async def on_silence(self) -> None: ...

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(max(0.0, self.last_write + self.interval_s - self._loop.time()))
            if self._loop.time() - self.last_write >= self.interval_s:
                await self.on_silence()

    @contextlib.asynccontextmanager
    async def ticking(self) -> AsyncIterator[None]:
        ticker = asyncio.create_task(self._tick(), name="keepalive")
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await ticker


class EarlyStart(_SilenceClock):
    """A stream that has to wait (for a free account, for Kimi's first words) starts its SSE response early and
    sends keep-alives, so proxies and clients do not give up on a silent connection. From then on a failure can
    only be reported as an event. In `whole_answer`'s style it begins a non-streamed answer's JSON body instead,
    every `interval_s` of silence."""

    def __init__(
        self, request: web.Request, style: StreamStyle = SSE_COMMENTS, interval_s: float | None = None
    ) -> None:
        super().__init__(service_of(request).keepalive_s if interval_s is None else interval_s)
        self._request = request
        self.style = style
        self.response: web.StreamResponse | None = None

    async def prepared(self) -> web.StreamResponse:
        if self.response is None:
            self.response = web.StreamResponse(headers={**STREAM_HEADERS, **self.style.headers})
            await self.response.prepare(self._request)
            if self.style.opening:
                await self.response.write(self.style.opening)
        return self.response

    async def on_silence(self) -> None:
        self.touch()
        await (await self.prepared()).write(self.style.keepalive)

    async def during(self, start: Awaitable[T]) -> T:
        """Awaits `start` (an answer's start: waiting for an account, uploads, Kimi's first words) while keeping
        the connection alive; the silence counts from the request's arrival."""
        async with self.ticking():
            return await start

    async def writer(self, interval_s: float) -> QuietWriter:
        """The prepared stream's writer, keeping it alive the same way."""
        return QuietWriter(await self.prepared(), interval_s, self.style.keepalive)


class QuietWriter(_SilenceClock):
    """Writes to a prepared stream and, while `ticking()`, sends a keep-alive whenever a whole interval passed
    without a write (Kimi searching or thinking in silence, or an answer held back to be checked)."""

    def __init__(self, response: web.StreamResponse, interval_s: float, keepalive: bytes = KEEPALIVE) -> None:
        super().__init__(interval_s)
        self.response = response
        self._keepalive = keepalive

    async def write(self, data: bytes) -> None:
        self.touch()
        await self.response.write(data)

    async def keepalive(self) -> None:
        await self.write(self._keepalive)

    async def on_silence(self) -> None:
        await self.keepalive()

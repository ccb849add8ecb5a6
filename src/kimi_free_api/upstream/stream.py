"""A running G3 Chat stream: pulled batch by batch, or pushed to callbacks straight from aiohttp's network callback.

Pushing is the fast path for streamed answers. aiohttp hands every piece of the response body to the response's
`StreamReader.feed_data`; a task then wakes up, reads it and passes it on. Switching that reader to a subclass whose
`feed_data` decodes, translates and hands the events over on the spot removes the task switch, the future and the
generator hops per frame — most of the cost of relaying. The subclass adds no fields, so a live reader's class can
be switched; it still calls aiohttp's own `feed_eof`/`set_exception`, so connection reuse and errors keep working.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
from aiohttp.streams import StreamReader

from kimi_free_api.core.errors import GatewayError, UpstreamError, UpstreamTimeout
from kimi_free_api.core.events import ChatEvent
from kimi_free_api.core.ports import BatchSink, EndSink
from kimi_free_api.upstream.connect import END_FLAGS, EnvelopeDecoder
from kimi_free_api.upstream.drift import drift
from kimi_free_api.upstream.errors import trailer_error
from kimi_free_api.upstream.frames import FrameTranslator
from kimi_free_api.upstream.watchdog import IdleWatchdog

log = logging.getLogger(__name__)

_PUSHED: dict[StreamReader, WebChatStream] = {}
# The weight of the newest gap between frames in their moving average: a few quick frames make a stream "fast".
_GAP_WEIGHT = 0.5


class _PushingReader(StreamReader):
    __slots__ = ()

    def feed_data(self, data: bytes, size: int = 0) -> bool:
        stream = _PUSHED.get(self)
        if stream is None:
            return super().feed_data(data, size)
        stream._on_data(data)
        return False

    def feed_eof(self) -> None:
        super().feed_eof()
        stream = _PUSHED.get(self)
        if stream is not None:
            stream._on_eof()

    def set_exception(self, exc: BaseException, *args: Any) -> None:
        super().set_exception(exc, *args)
        stream = _PUSHED.get(self)
        if stream is not None:
            stream._on_failure(exc)


def _as_gateway_error(exc: BaseException, idle_timeout_s: float) -> GatewayError:
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout(f"Kimi sent nothing for {idle_timeout_s:g} s; the stream was abandoned")
    return UpstreamError("Kimi's stream broke off before the answer was complete")


class WebChatStream:
    def __init__(
        self,
        response: aiohttp.ClientResponse,
        translator: FrameTranslator,
        watchdog: IdleWatchdog,
        coalesce_s: float = 0.0,
        observer: Callable[[int, bytes], None] | None = None,
    ) -> None:
        """`observer` sees every envelope's flags and message as it arrives (`upstream/trace.py` records them)."""
        self._response = response
        self._reader: StreamReader = response.content
        self._decoder = EnvelopeDecoder()
        self._translator = translator
        self._observer = observer
        self._watchdog = watchdog
        self._loop = asyncio.get_running_loop()
        self._last_activity = self._loop.time()
        self._paused = False
        self._failure: GatewayError | None = None
        self._upstream_failed = False
        self._ended = False
        self._closed = False
        self._draining = False
        self._on_batch: BatchSink | None = None
        self._on_end: EndSink | None = None
        self._inbox: list[bytes] = []
        self._coalesce_s = coalesce_s
        self._last_relay = float("-inf")
        # A relay is waiting for the coalescing window to close; `_gathering`: and reading is paused meanwhile.
        self._held = False
        self._gathering = False
        # How far apart frames arrive (a moving average), which tells whether holding one can gather another.
        self._gap = coalesce_s
        self._last_arrival = self._loop.time()
        watchdog.watch(self)

    @property
    def chat_id(self) -> str:
        return self._translator.chat_id

    @property
    def message_id(self) -> str:
        return self._translator.message_id

    @property
    def completed(self) -> bool:
        # A parked research run is still waiting upstream: the cleanup cancels it, which frees the account.
        translator = self._translator
        return (translator.finished and not translator.parked) or self._upstream_failed

    def idle_since(self) -> float | None:
        return None if self._paused else self._last_activity

    def expire(self) -> None:
        if self._draining:
            self._response.close()
            self._dispose()
        elif not self._ended:
            self._reader.set_exception(
                UpstreamTimeout(f"Kimi sent nothing for {self._watchdog.timeout_s:g} s; the stream was abandoned")
            )

    def _decode(self, data: bytes) -> list[ChatEvent]:
        """Events in this piece of the body; a failure is kept in `_failure`, the events before it still count."""
        self._last_activity = self._loop.time()
        batch: list[ChatEvent] = []
        translate = self._translator.translate
        try:
            for flags, message in self._decoder.feed(data):
                if self._observer is not None:
                    self._observer(flags, message)
                if flags & END_FLAGS:
                    error = trailer_error(flags, message)
                    if error is not None:
                        raise error
                    continue
                try:
                    frame = orjson.loads(message)
                except orjson.JSONDecodeError:
                    # Every other client skips such envelopes (evidence row 28); they are counted, not fatal.
                    drift.note("unreadable data envelope", {"empty": not message, "bytes": len(message)})
                    continue
                if type(frame) is dict:
                    translate(frame, batch)
                else:
                    drift.note("data envelope that is not an object", frame)
        except GatewayError as exc:
            self._failure = exc
            self._upstream_failed = True
        return batch

    async def next_batch(self) -> list[ChatEvent] | None:
        while True:
            if self._failure is not None:
                failure, self._failure = self._failure, None
                self._ended = True
                raise failure
            if self._ended or self._translator.parked:
                return None  # a parked research run keeps its stream open: the answer is complete all the same
            try:
                data = await self._reader.readany()
            except Exception as exc:
                self._ended = True
                if self._translator.finished:
                    return None
                raise _as_gateway_error(exc, self._watchdog.timeout_s) from exc
            if not data:
                self._ended = True
                if self._translator.finished:
                    return None
                raise UpstreamError("Kimi closed the stream before the answer was complete")
            batch = self._decode(data)
            if batch:
                return batch

    def push(self, on_batch: BatchSink, on_end: EndSink) -> None:
        self._on_batch, self._on_end = on_batch, on_end
        reader = self._reader
        if self._failure is not None or self._ended:
            self._finish(self._failure)
            return
        try:
            buffered = reader.read_nowait(-1)
        except Exception as exc:
            self._on_failure(exc)
            return
        _PUSHED[reader] = self
        reader.__class__ = _PushingReader
        if buffered:
            self._inbox.append(buffered)
            self._relay_inbox()
        if reader.is_eof():
            self._on_eof()

    def _on_data(self, data: bytes) -> None:
        # aiohttp feeds every HTTP chunk separately, and one socket read often holds many: collect them and relay
        # once the read is processed, so a burst costs one translation pass and one write to the client.
        if self._inbox:
            # Another frame before the last one went out: a fast stream, whose gap needs no clock to update.
            self._gap *= 1 - _GAP_WEIGHT
            if self._held and not self._gathering:
                # A second frame within one window: stop reading until the window closes and let the kernel
                # gather the rest, instead of paying a wake-up and a read for each frame. Only now: pausing and
                # resuming cost two system calls, more than a stream of one frame per window would save.
                self._gathering = True
                self._set_reading()
            self._inbox.append(data)
            return
        now = self._loop.time()
        self._gap += (now - self._last_arrival - self._gap) * _GAP_WEIGHT
        self._last_arrival = now
        wait = self._last_relay + self._coalesce_s - now
        if wait > self._gap:
            # The next frame is due before the window since the last relay closes: hold this one until then, so
            # that both go out in one write.
            self._held = True
            self._loop.call_later(wait, self._relay_inbox)
        else:
            # Nothing else is expected in time to share a write: holding would only delay this frame.
            self._loop.call_soon(self._relay_inbox)
        self._inbox.append(data)

    def _relay_inbox(self) -> None:
        self._held = False
        if self._gathering:
            self._gathering = False
            self._set_reading()
        self._last_relay = self._loop.time()
        if not self._inbox:
            return
        data = b"".join(self._inbox) if len(self._inbox) > 1 else self._inbox[0]
        self._inbox.clear()
        if self._ended:
            return  # the end-of-stream envelope after `done`, or bytes after the client stopped listening
        batch = self._decode(data)
        keep_going = True
        if batch:
            try:
                keep_going = self._on_batch(batch)  # type: ignore[misc]
            except Exception:
                log.exception("relaying a batch failed")
                self._failure = self._failure or UpstreamError("The gateway failed while relaying the answer")
        if self._failure is not None:
            self._finish(self._failure)
            self.close()
        elif self._translator.finished:
            self._finish(None)  # the rest (end-of-stream envelope, EOF) is read to keep the connection reusable
            if self._translator.parked:
                self.close()
        elif not keep_going:
            self._finish(None)
            self.close()

    def _on_eof(self) -> None:
        self._relay_inbox()
        if self._draining:
            self._dispose()
            return
        _PUSHED.pop(self._reader, None)
        if self._translator.finished:
            self._finish(None)
        else:
            self._finish(UpstreamError("Kimi closed the stream before the answer was complete"))

    def _on_failure(self, exc: BaseException) -> None:
        self._relay_inbox()
        if self._draining:
            self._dispose()
            return
        _PUSHED.pop(self._reader, None)
        self._finish(None if self._translator.finished else _as_gateway_error(exc, self._watchdog.timeout_s))
        self.close()

    def _finish(self, error: GatewayError | None) -> None:
        if self._ended and self._on_end is None:
            return
        self._ended = True
        self._failure = None
        on_end, self._on_end = self._on_end, None
        self._on_batch = None
        if on_end is not None:
            on_end(error)

    def pause(self) -> None:
        self._paused = True
        self._set_reading()

    def resume(self) -> None:
        self._paused = False
        self._last_activity = self._loop.time()
        self._set_reading()

    def _set_reading(self) -> None:
        """Reads from Kimi unless the client is behind or frames are being gathered for one relay."""
        connection = self._response.connection
        protocol = connection.protocol if connection is not None else None
        if protocol is None or self._closed:
            return
        if self._paused or self._gathering:
            protocol.pause_reading()
        else:
            protocol.resume_reading()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._ended = True
        self._on_batch = self._on_end = None
        reader = self._reader
        translator = self._translator
        if (
            translator.finished
            and not translator.parked  # a research run waiting for the user never sends the end of its stream
            and reader in _PUSHED
            and not reader.is_eof()
            and reader.exception() is None
        ):
            # Only the end-of-stream envelope is missing: wait for it, so the connection can be reused.
            self._draining = True
            return
        self._dispose()

    def _dispose(self) -> None:
        self._draining = False
        reader = self._reader
        _PUSHED.pop(reader, None)
        self._watchdog.unwatch(self)
        if reader.is_eof() and reader.exception() is None:
            self._response.release()  # whole body read: the connection goes back to the pool
        else:
            self._response.close()  # aborts the request: Kimi sees the client go away

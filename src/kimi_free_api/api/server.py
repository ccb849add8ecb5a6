"""The HTTP server under the routes: bounded connections, and OpenAI error bodies for what aiohttp refuses itself.

aiohttp answers a request it cannot parse (a bad header, a line too long, a non-HTTP first line) from its protocol,
before any middleware runs, with a plain-text body that quotes the offending bytes — sometimes the sender's bearer
token. `GatewayProtocol.handle_error` answers those in the OpenAI error shape instead, naming only the kind of
fault.

Connections are a resource the kernel caps (the open-file limit): a client that opens many and never finishes a
request would otherwise lock everyone else out. `ConnectionGuard` gives each new connection a deadline for its
first request head, keeps the count under a cap, and when full closes the connection that has been idle longest
(never one with a request in progress) to make room.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from aiohttp import http_exceptions, web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from kimi_free_api.api.errors import Handler, error_response
from kimi_free_api.config import Settings
from kimi_free_api.core.errors import GatewayError, InvalidRequest

log = logging.getLogger(__name__)

# File descriptors kept back from the connection cap: the SQLite file, logs, DNS, the listening socket.
_FD_RESERVE = 64
_WARN_EVERY_S = 10.0


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_connections: int
    head_timeout_s: float
    idle_timeout_s: float


def connection_limits(settings: Settings) -> ConnectionLimits:
    return ConnectionLimits(
        max_connections=settings.max_connections or default_max_connections(),
        head_timeout_s=settings.request_head_timeout_s,
        idle_timeout_s=settings.idle_connection_timeout_s,
    )


def default_max_connections() -> int:
    """Half of what the open-file limit leaves: every relayed stream also holds a connection to Kimi."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 65536
    return max(16, (soft - _FD_RESERVE) // 2)


class ConnectionGuard:
    """Open connections, split into busy (a request is being handled) and idle (oldest first)."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self._idle: OrderedDict[RequestHandler, None] = OrderedDict()
        self._open: dict[RequestHandler, asyncio.TimerHandle | None] = {}
        self.refused = 0
        self.evicted = 0

    @property
    def count(self) -> int:
        return len(self._open)

    def admit(self, protocol: RequestHandler) -> bool:
        """Whether a new connection may stay; makes room by closing the longest-idle one when full."""
        if len(self._open) >= self.limits.max_connections:
            if not self._idle:
                self.refused += 1
                return False
            oldest, _ = self._idle.popitem(last=False)
            self.evicted += 1
            oldest.force_close()
            self.release(oldest)
        loop = asyncio.get_running_loop()
        self._open[protocol] = loop.call_later(self.limits.head_timeout_s, self._head_overdue, protocol)
        self._idle[protocol] = None
        return True

    def _head_overdue(self, protocol: RequestHandler) -> None:
        if protocol in self._idle:
            self._open[protocol] = None
            protocol.force_close()

    def busy(self, protocol: RequestHandler) -> None:
        timer = self._open.get(protocol)
        if timer is not None:
            timer.cancel()
            self._open[protocol] = None
        self._idle.pop(protocol, None)

    def idle(self, protocol: RequestHandler) -> None:
        if protocol in self._open:
            self._idle[protocol] = None

    def release(self, protocol: RequestHandler) -> None:
        timer = self._open.pop(protocol, None)
        if timer is not None:
            timer.cancel()
        self._idle.pop(protocol, None)


class _MalformedRequest(InvalidRequest):
    code = "malformed_request"


def _parse_fault(exc: BaseException | None) -> str:
    """What was wrong with a request aiohttp could not parse, without quoting any of its bytes."""
    if isinstance(exc, http_exceptions.LineTooLong):
        return "A header line or the request line is longer than the server accepts."
    if isinstance(exc, http_exceptions.BadHttpMethod | http_exceptions.BadStatusLine):
        return "The request line is not a valid HTTP request line."
    if isinstance(exc, http_exceptions.InvalidHeader):
        return "A request header is malformed."
    if isinstance(exc, http_exceptions.ContentLengthError | http_exceptions.TransferEncodingError):
        return "The request body's framing (Content-Length or chunked encoding) is invalid."
    return "The request is not well-formed HTTP."


class GatewayProtocol(RequestHandler):
    __slots__ = ()

    def handle_error(
        self, request: BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("the response had begun; the connection is closed instead")
        error: GatewayError
        if status < 500:
            log.info("refused a malformed request (%s)", type(exc).__name__ if exc else status)
            error = _MalformedRequest(_parse_fault(exc))
        else:
            log.error("unhandled failure outside the routes", exc_info=exc)
            error = GatewayError("The gateway failed unexpectedly; the failure was logged.")
        error.status = status
        response = error_response(error)
        response.force_close()
        return response


# Written straight to a connection refused for lack of room, which never gets as far as a request.
_FULL = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
    b"Connection: close\r\nContent-Length: %d\r\n\r\n%b"
)
_FULL_BODY = (
    b'{"error":{"message":"The server has as many connections open as it allows; retry shortly.",'
    b'"type":"server_error","param":null,"code":"too_many_connections"}}'
)
FULL_RESPONSE = _FULL % (len(_FULL_BODY), _FULL_BODY)


class GatewayServer(web.Server):
    """aiohttp's low-level server with `GatewayProtocol` connections, admitted by a `ConnectionGuard`."""

    def __init__(self, guard: ConnectionGuard, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard = guard
        self._warned_at = float("-inf")

    def __call__(self) -> RequestHandler:
        return GatewayProtocol(self, loop=self._loop, **self._kwargs)

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        if not self.guard.admit(handler):
            now = self._loop.time()
            if now - self._warned_at >= _WARN_EVERY_S:  # a flood of refusals must not become a flood of log lines
                self._warned_at = now
                log.warning(
                    "connection limit (%d) reached with every connection busy: %d refused so far",
                    self.guard.limits.max_connections,
                    self.guard.refused,
                )
            transport.write(FULL_RESPONSE)
            handler.force_close()  # closes the transport once the answer is out

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        self.guard.release(handler)
        super().connection_lost(handler, exc)


CONNECTIONS = web.AppKey("connections", ConnectionGuard)


class GatewayRunner(web.AppRunner):
    """An `AppRunner` whose server is a `GatewayServer`. The application starts exactly as under aiohttp's own
    runner (`super()._make_server`); only the connection class and the admission differ."""

    def __init__(self, app: web.Application, limits: ConnectionLimits, **kwargs: Any) -> None:
        kwargs.setdefault("keepalive_timeout", limits.idle_timeout_s)
        super().__init__(app, **kwargs)
        self.guard = app[CONNECTIONS] = ConnectionGuard(limits)

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        return GatewayServer(
            self.guard,
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=asyncio.get_running_loop(),
            **plain._kwargs,
        )


@web.middleware
async def connection_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Marks the connection busy while its request is handled, so it is never the one closed to make room."""
    guard = request.app.get(CONNECTIONS)
    if guard is None:
        return await handler(request)
    protocol = request.protocol
    guard.busy(protocol)
    try:
        return await handler(request)
    finally:
        guard.idle(protocol)

"""Anthropic's server-sent events: `event: <type>` + `data: <json>` pairs, and `ping` events during silences.

A stream that has to wait (for a free account, for Kimi's first words) begins early: `message_start`, then a `ping`
every keep-alive interval, so that proxies and clients do not give up on it. Once begun, a failure can only be
reported as an `error` event.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from kimi_free_api.api.anthropic.errors import REQUEST_ID
from kimi_free_api.api.keepalive import STREAM_HEADERS, QuietWriter
from kimi_free_api.redact import request_id_var

PING = b'event: ping\ndata: {"type":"ping"}\n\n'


def encode(*events: dict[str, Any]) -> bytes:
    return b"".join(b"event: %b\ndata: %b\n\n" % (event["type"].encode(), orjson.dumps(event)) for event in events)


class EarlyMessage:
    """The stream's response, begun with `message_start` when first needed."""

    def __init__(self, request: web.Request, start: dict[str, Any]) -> None:
        self._request = request
        self._start = start
        self.response: web.StreamResponse | None = None

    async def prepared(self) -> web.StreamResponse:
        if self.response is None:
            self.response = web.StreamResponse(headers={**STREAM_HEADERS, REQUEST_ID: request_id_var.get()})
            await self.response.prepare(self._request)
            await self.response.write(encode(self._start))
        return self.response

    async def keepalive(self) -> None:
        await (await self.prepared()).write(PING)


class PingWriter(QuietWriter):
    """Keeps a silent stream alive with Anthropic's `ping` events rather than SSE comments."""

    async def keepalive(self) -> None:
        await self.write(PING)

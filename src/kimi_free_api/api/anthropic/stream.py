"""Anthropic's server-sent events: `event: <type>` + `data: <json>` pairs, and `ping` events during silences.

A stream that has to wait (for a free account, for Kimi's first words) begins early: `message_start`, then a `ping`
every keep-alive interval, so that proxies and clients do not give up on it (api/keepalive.py does the waiting).
Once begun, a failure can only be reported as an `error` event.
"""

from __future__ import annotations

from typing import Any

import orjson

from kimi_free_api.api.anthropic.errors import REQUEST_ID
from kimi_free_api.api.keepalive import StreamStyle
from kimi_free_api.redact import request_id_var

PING = b'event: ping\ndata: {"type":"ping"}\n\n'


def encode(*events: dict[str, Any]) -> bytes:
    return b"".join(b"event: %b\ndata: %b\n\n" % (event["type"].encode(), orjson.dumps(event)) for event in events)


def message_stream(message: dict[str, Any]) -> StreamStyle:
    """A stream of `message`'s events: begun with its `message_start`, kept alive with pings."""
    start = encode({"type": "message_start", "message": message})
    return StreamStyle(keepalive=PING, opening=start, headers={REQUEST_ID: request_id_var.get()})

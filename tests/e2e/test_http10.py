"""Streams over HTTP/1.0 (curl --http1.0, and nginx's default way of proxying): no chunked encoding exists there, so
the body must be the SSE events alone, ended by closing the connection. HTTP/1.1 keeps its chunked framing. Also:
keep-alive comments come within KEEPALIVE_S of the silence starting, however the silence falls."""

from __future__ import annotations

from urllib.parse import urlsplit

import orjson
import pytest

from kimi_free_api.emulator import Account, Emulator
from kimi_free_api.emulator.answers import expected_answer
from tests.e2e.rawhttp import dechunk, sse_events, streamed_text, timed_exchange
from tests.e2e.support import GatewayFactory


def _chat_request(version: str, token: str, prompt: str, stream: bool = True) -> bytes:
    body = orjson.dumps({"model": "kimi", "messages": [{"role": "user", "content": prompt}], "stream": stream})
    head = (
        f"POST /v1/chat/completions {version}\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    )
    if version == "HTTP/1.1":
        head += "Connection: close\r\n"
    return head.encode() + b"\r\n" + body


def _split(pieces: list[tuple[float, bytes]]) -> tuple[bytes, bytes]:
    head, _, body = b"".join(piece for _, piece in pieces).partition(b"\r\n\r\n")
    return head, body


def _port(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


async def test_http10_stream_is_plain_sse_until_close(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account
) -> None:
    gateway = await gateway_factory()
    pieces = await timed_exchange(_port(gateway.url), _chat_request("HTTP/1.0", account.refresh_token, "over 1.0"))
    head, body = _split(pieces)
    assert head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n")[0]
    assert b"transfer-encoding" not in head.lower()
    assert b"text/event-stream" in head
    events = sse_events(body)  # every byte of the body is an SSE event: no hex chunk-size lines
    assert streamed_text(events) == expected_answer("over 1.0", emulator.config)


async def test_http10_keepalives_are_plain_too(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account
) -> None:
    emulator.configure(first_event_delay_ms=900, event_delay_ms=400, event_count=3)
    gateway = await gateway_factory(keepalive_s=0.25)
    pieces = await timed_exchange(_port(gateway.url), _chat_request("HTTP/1.0", account.refresh_token, "quiet"))
    _, body = _split(pieces)
    events = sse_events(body)
    assert events.count(b": keep-alive") >= 4  # while waiting for the first words, and between the later ones
    assert streamed_text(events) == expected_answer("quiet", emulator.config)


async def test_http11_stream_keeps_chunked_framing(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account
) -> None:
    emulator.configure(first_event_delay_ms=500)
    gateway = await gateway_factory(keepalive_s=0.2)
    pieces = await timed_exchange(_port(gateway.url), _chat_request("HTTP/1.1", account.refresh_token, "over 1.1"))
    head, body = _split(pieces)
    assert b"transfer-encoding: chunked" in head.lower()
    assert body.endswith(b"0\r\n\r\n")
    events = sse_events(dechunk(body))
    assert b": keep-alive" in events
    assert streamed_text(events) == expected_answer("over 1.1", emulator.config)


async def test_http10_plain_completion(gateway_factory: GatewayFactory, emulator: Emulator, account: Account) -> None:
    gateway = await gateway_factory()
    request = _chat_request("HTTP/1.0", account.refresh_token, "whole", stream=False)
    head, body = _split(await timed_exchange(_port(gateway.url), request))
    assert b" 200 " in head.split(b"\r\n")[0]
    assert orjson.loads(body)["choices"][0]["message"]["content"] == expected_answer("whole", emulator.config)


@pytest.mark.parametrize("version", ["HTTP/1.0", "HTTP/1.1"])
async def test_keepalive_within_interval_of_every_silence(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account, version: str
) -> None:
    # Silences of 1.3 s before the first words and 1.05 s between the next ones, against a 0.5 s interval. A timer
    # ticking every interval from the start of the stream sees a write in the window just before each silence and
    # stays quiet for nearly 1 s; counting from the last write, no gap exceeds 0.5 s (+ slack).
    interval = 0.5
    emulator.configure(first_event_delay_ms=1300, event_delay_ms=1050, event_count=3)
    gateway = await gateway_factory(keepalive_s=interval)
    pieces = await timed_exchange(_port(gateway.url), _chat_request(version, account.refresh_token, "timed"))
    arrivals = [at for at, _ in pieces]
    gaps = [later - earlier for earlier, later in zip([0.0, *arrivals], arrivals, strict=False)]
    assert max(gaps) <= interval + 0.25, gaps
    _, body = _split(pieces)
    events = sse_events(dechunk(body) if version == "HTTP/1.1" else body)
    assert streamed_text(events) == expected_answer("timed", emulator.config)


async def test_http10_responses_stream_is_plain_sse(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account
) -> None:
    gateway = await gateway_factory()
    body = orjson.dumps({"model": "kimi", "input": "responses over 1.0", "stream": True})
    request = (
        b"POST /v1/responses HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
        + account.refresh_token.encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
        + body
    )
    head, raw = _split(await timed_exchange(_port(gateway.url), request))
    assert b"transfer-encoding" not in head.lower()
    text = ""
    for event in raw.removesuffix(b"\n\n").split(b"\n\n"):
        kind, data = event.split(b"\n")
        assert kind.startswith(b"event: ") and data.startswith(b"data: "), event[:80]
        payload = orjson.loads(data[6:])
        if payload["type"] == "response.output_text.delta":
            text += payload["delta"]
    assert payload["type"] == "response.completed"
    assert text == expected_answer("responses over 1.0", emulator.config)

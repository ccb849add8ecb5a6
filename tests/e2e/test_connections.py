"""Connections and bodies are bounded: trickled heads and bodies time out, a full server makes room by closing the
longest-idle connection, bodies are refused by size and by credentials before they are read, and text from a
request cannot forge a log line. Real sockets on loopback, a bounded number of them."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import resource
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import orjson
import pytest

from kimi_free_api.api.server import CONNECTIONS
from kimi_free_api.emulator import Account, Emulator
from kimi_free_api.redact import _RedactingFormatter
from tests.e2e.rawhttp import RawResponse, split_response
from tests.e2e.support import Gateway, GatewayFactory, eventually, free_port, stop_process


def _port(gateway: Gateway) -> int:
    port = urlsplit(gateway.url).port
    assert port is not None
    return port


async def _open(gateway: Gateway, first: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", _port(gateway))
    writer.write(first)
    await writer.drain()
    return reader, writer


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """What the server sent before closing; fails if it keeps the connection open longer than `seconds`."""
    data = b""
    async with asyncio.timeout(seconds):
        try:
            while chunk := await reader.read(65536):
                data += chunk
        except ConnectionResetError:
            pass
    return data


async def _ask(session: aiohttp.ClientSession, url: str, token: str) -> int:
    body = {"model": "kimi", "messages": [{"role": "user", "content": "hi"}]}
    async with session.post(
        url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {token}"}
    ) as response:
        await response.read()
        return response.status


async def test_trickled_heads_are_closed_and_others_still_served(
    gateway_factory: GatewayFactory, account: Account
) -> None:
    gateway = await gateway_factory(request_head_timeout_s=0.5)
    slow = [await _open(gateway, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n") for _ in range(20)]

    async def trickle(writer: asyncio.StreamWriter) -> None:
        for _ in range(30):
            writer.write(b"X")
            await asyncio.sleep(0.1)

    tricklers = [asyncio.create_task(trickle(writer)) for _, writer in slow]
    try:
        async with aiohttp.ClientSession() as session:
            assert await _ask(session, gateway.url, account.refresh_token) == 200
        for reader, _ in slow:
            await _closed_within(reader, 2.0)
    finally:
        for task in tricklers:
            task.cancel()
        for _, writer in slow:
            writer.close()
    await eventually(lambda: gateway.app[CONNECTIONS].count == 0)


async def test_a_full_server_closes_the_longest_idle_connection(
    gateway_factory: GatewayFactory, account: Account
) -> None:
    gateway = await gateway_factory(max_connections=10, request_head_timeout_s=60)
    guard = gateway.app[CONNECTIONS]
    idle = [await _open(gateway, b"GET /ping HTTP/1.1\r\n") for _ in range(25)]
    await eventually(lambda: guard.evicted >= 15)
    assert guard.count <= 10
    # The oldest were closed to make room for the newer ones; a real client still gets in.
    await _closed_within(idle[0][0], 1.0)
    async with aiohttp.ClientSession() as session:
        assert await _ask(session, gateway.url, account.refresh_token) == 200
    for _, writer in idle:
        writer.close()


async def test_every_connection_busy_is_a_503_error_object(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account
) -> None:
    emulator.configure(first_event_delay_ms=1500)
    gateway = await gateway_factory(max_connections=2)
    tokens = [account.refresh_token, emulator.create_account("bob").refresh_token]
    async with aiohttp.ClientSession() as session:
        busy = [asyncio.create_task(_ask(session, gateway.url, token)) for token in tokens]
        await eventually(lambda: emulator.state.live_chats == 2)
        reader, writer = await _open(gateway, b"GET /ping HTTP/1.1\r\n\r\n")
        response = split_response(await _closed_within(reader, 2.0))
        writer.close()
        assert response.status == 503
        assert response.json()["error"]["code"] == "too_many_connections"
        assert await asyncio.gather(*busy) == [200, 200]


async def test_idle_keepalive_connection_is_closed(gateway_factory: GatewayFactory) -> None:
    gateway = await gateway_factory(idle_connection_timeout_s=0.3)
    reader, writer = await _open(gateway, b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
    answered = await _closed_within(reader, 3.0)
    writer.close()
    assert answered.startswith(b"HTTP/1.1 200") and answered.endswith(b"pong")


async def test_trickled_body_times_out_with_408(gateway_factory: GatewayFactory, account: Account) -> None:
    gateway = await gateway_factory(request_body_timeout_s=0.5)
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + account.refresh_token.encode() + b"\r\nContent-Length: 1000\r\n\r\n{"
    )
    reader, writer = await _open(gateway, head)
    writer.write(b" ")
    response = await _answer(reader)
    writer.close()
    assert response.status == 408
    assert response.json()["error"]["code"] == "request_timeout"


async def test_trickled_upload_times_out_with_408(gateway_factory: GatewayFactory, account: Account) -> None:
    gateway = await gateway_factory(request_body_timeout_s=0.5)
    head = (
        b"POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b0\r\n"
        b"Authorization: Bearer " + account.refresh_token.encode() + b"\r\nContent-Length: 100000\r\n\r\n"
        b'--b0\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nsome text'
    )
    reader, writer = await _open(gateway, head)
    response = await _answer(reader)
    writer.close()
    assert response.status == 408
    assert response.json()["error"]["code"] == "request_timeout"


async def _answer(reader: asyncio.StreamReader) -> RawResponse:
    """One JSON response read off a connection that stays open (the server discards an unread body a while)."""
    raw = b""
    async with asyncio.timeout(3):
        while b"\r\n\r\n" not in raw or not raw.endswith(b"}"):
            chunk = await reader.read(65536)
            assert chunk, raw
            raw += chunk
    return split_response(raw)


async def _refused_unread(gateway: Gateway, headers: bytes, declared: int) -> tuple[int, dict[str, str]]:
    """Declares a body of `declared` bytes and sends none of it: the answer must come anyway."""
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n" + headers + b"Content-Length: %d\r\n\r\n" % declared
    reader, writer = await _open(gateway, head)
    response = await _answer(reader)
    writer.close()
    return response.status, response.json()["error"]


async def test_oversized_body_is_refused_before_it_is_read(gateway_factory: GatewayFactory, account: Account) -> None:
    gateway = await gateway_factory(max_request_bytes=1024)
    auth = b"Authorization: Bearer " + account.refresh_token.encode() + b"\r\n"
    status, error = await _refused_unread(gateway, auth, 100 * 1024 * 1024)
    assert status == 413
    assert error["code"] == "request_too_large"


async def test_unauthenticated_body_is_refused_before_it_is_read(gateway_factory: GatewayFactory) -> None:
    gateway = await gateway_factory(api_keys="kfa-0123456789abcdef0123", allow_client_tokens="false")
    for auth in (b"", b"Authorization: Bearer kfa-wrong-key-0000000000\r\n"):
        status, error = await _refused_unread(gateway, auth, 50 * 1024 * 1024)
        assert status == 401, error
        assert error["type"] == "authentication_error"


async def test_too_many_tokens_in_one_request(http: aiohttp.ClientSession) -> None:
    tokens = ",".join(f"token-{i:04d}-abcdefgh" for i in range(33))
    body = {"model": "kimi", "messages": [{"role": "user", "content": "hi"}]}
    async with http.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {tokens}"}) as response:
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "too_many_tokens"


@pytest.fixture
def gateway_log() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(_RedactingFormatter(as_json=False))
    logger = logging.getLogger("kimi_free_api")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_request_text_cannot_forge_a_log_line(gateway: Gateway, gateway_log: io.StringIO) -> None:
    reader, writer = await _open(
        gateway,
        b"GET /nothing%0d%0a2026-01-01%2000:00:00%20INFO%20forged%0a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    response = split_response(await _closed_within(reader, 5.0))
    writer.close()
    assert response.status == 404
    assert orjson.loads(response.body)["error"]["code"] == "not_found"
    lines = [line for line in gateway_log.getvalue().splitlines() if line]
    assert lines, "the request was not logged"
    assert not any(line.startswith("2026-01-01") for line in lines)
    assert any("/nothing\\r\\n2026-01-01 00:00:00 INFO forged\\n" in line for line in lines)


async def test_many_trickling_connections_under_a_low_file_limit(tmp_path: Path) -> None:
    """The reported lock-out, scaled down: a real `serve` process limited to 256 open files, 300 connections that
    never finish their request head. Clients still get answers, and the log stays small."""
    port = free_port()
    log_path = tmp_path / "gateway.log"

    def limit_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "kimi_free_api", "serve", "--emulator", "--host", "127.0.0.1", "--port", str(port)),
            env={**os.environ, "DATA_DIR": str(tmp_path / "data"), "REQUEST_HEAD_TIMEOUT_S": "30"},
            stdout=log_file,
            stderr=log_file,
            preexec_fn=limit_files,
        )
    url = f"http://127.0.0.1:{port}"
    slow: list[asyncio.StreamWriter] = []
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            await eventually(lambda: _listening(port), timeout_s=15)
            for _ in range(300):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
                slow.append(writer)
            for _ in range(3):
                assert await _ask(session, url, "any-token-works-in-demo-mode") == 200
    finally:
        for writer in slow:
            writer.close()
        await stop_process(process)
    assert log_path.stat().st_size < 64 * 1024, log_path.read_text()[-2000:]


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0

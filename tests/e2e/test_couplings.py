"""What the gateway relies on inside aiohttp, pinned: if an upgrade changes any of it, these fail by name rather
than the relay misbehaving quietly.

* The push relay (upstream/stream.py) switches a live response body reader to a subclass whose `feed_data`,
  `feed_eof` and `set_exception` aiohttp's client protocol must call.
* upstream/web.py turns the per-read timeout of a streaming connection off (`protocol.read_timeout = None`).
* api/server.py builds its server in `AppRunner._make_server` from the plain server's handler, factory and options,
  gets every connection through `Server.connection_made/connection_lost`, and answers unparsable requests in
  `RequestHandler.handle_error`.

The pull path (`next_batch`) is what the relay would fall back to: it is checked to give exactly the events the
push path gives.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import pytest
from aiohttp import web
from aiohttp.client_proto import ResponseHandler
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from kimi_free_api.api.server import GatewayProtocol, GatewayRunner, GatewayServer
from kimi_free_api.config import Settings
from kimi_free_api.core.events import ChatEvent
from kimi_free_api.core.ports import UpstreamChat
from kimi_free_api.emulator import Account, Emulator
from kimi_free_api.state.sqlite import SqliteStore
from kimi_free_api.upstream.proxies import ProxyRoutes
from kimi_free_api.upstream.stream import _PushingReader
from kimi_free_api.upstream.web import KimiWebAdapter
from tests.e2e.support import Gateway


async def _dribble(request: web.Request) -> web.StreamResponse:
    """Headers, a piece, another after 0.2 s, then 0.8 s of silence and the last piece."""
    response = web.StreamResponse()
    await response.prepare(request)
    for pause, piece in ((0.0, b"one "), (0.2, b"two "), (0.8, b"three")):
        await asyncio.sleep(pause)
        await response.write(piece)
    await response.write_eof()
    return response


async def _broken(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Length": "100"})
    await response.prepare(request)
    await response.write(b"only part of it")
    assert request.transport is not None
    request.transport.close()
    return response


@pytest.fixture
async def origin() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/dribble", _dribble)
    app.router.add_get("/broken", _broken)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


class _Recording(StreamReader):
    __slots__ = ()
    calls: ClassVar[list[str]] = []

    def feed_data(self, data: bytes, size: int = 0) -> bool:
        self.calls.append("data")
        return super().feed_data(data, size)

    def feed_eof(self) -> None:
        self.calls.append("eof")
        super().feed_eof()

    def set_exception(self, exc: BaseException, *args: Any) -> None:
        self.calls.append("exception")
        super().set_exception(exc, *args)


async def test_body_reader_class_can_be_switched_and_is_fed_through_its_methods(origin: str) -> None:
    assert _PushingReader.__slots__ == ()  # no fields of its own, so a live reader's class may become it
    async with aiohttp.ClientSession() as session:
        _Recording.calls = []
        async with session.get(origin + "/dribble") as response:
            assert type(response.content) is StreamReader
            response.content.__class__ = _Recording
            assert await response.read() == b"one two three"
        assert "data" in _Recording.calls and "eof" in _Recording.calls
        _Recording.calls = []
        async with session.get(origin + "/broken") as response:
            response.content.__class__ = _Recording
            with pytest.raises(aiohttp.ClientPayloadError):
                await response.read()
        assert "exception" in _Recording.calls


async def test_streaming_read_timeout_can_be_turned_off(origin: str) -> None:
    assert isinstance(inspect.getattr_static(ResponseHandler, "read_timeout"), property)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=0.4)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.get(origin + "/dribble") as response:
            with pytest.raises(TimeoutError):  # the 0.8 s silence outlasts the 0.4 s per-read timeout …
                await response.read()
        async with session.get(origin + "/dribble") as response:
            assert response.connection is not None and response.connection.protocol is not None
            response.connection.protocol.read_timeout = None
            assert await response.read() == b"one two three"  # … unless it is turned off, as upstream/web.py does


async def test_gateway_server_is_built_from_aiohttp_parts(gateway: Gateway) -> None:
    runner = gateway.runner
    assert isinstance(runner, GatewayRunner)
    server = runner.server
    assert isinstance(server, GatewayServer)
    assert "keepalive_timeout" in server._kwargs
    assert set(inspect.signature(RequestHandler.handle_error).parameters) == {
        "self",
        "request",
        "status",
        "exc",
        "message",
    }
    async with aiohttp.ClientSession() as session, session.get(gateway.url + "/ping") as response:
        assert await response.text() == "pong"
        assert [type(handler) for handler in server.connections] == [GatewayProtocol]
        assert server.guard.count == 1


async def _adapter(emulator: Emulator, tmp_path: Path, routes: ProxyRoutes) -> KimiWebAdapter:
    settings = Settings(kimi_base_url=emulator.base_url, data_dir=str(tmp_path))
    return KimiWebAdapter(routes, settings, token_cache=SqliteStore.in_dir(str(tmp_path)))


async def test_pull_path_gives_what_push_gives(emulator: Emulator, account: Account, tmp_path: Path) -> None:
    emulator.configure(event_count=20, thinking_events=3)
    routes = ProxyRoutes("")
    try:
        adapter = await _adapter(emulator, tmp_path, routes)
        request = UpstreamChat(prompt="same either way", thinking=True)

        pulled: list[ChatEvent] = []
        stream = await adapter.chat(account.refresh_token, request)
        while (batch := await stream.next_batch()) is not None:
            pulled += batch
        stream.close()

        pushed: list[ChatEvent] = []
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        stream = await adapter.chat(account.refresh_token, request)

        def on_batch(batch: list[ChatEvent]) -> bool:
            pushed.extend(batch)
            return True

        stream.push(on_batch, lambda error: done.set_exception(error) if error else done.set_result(None))
        await asyncio.wait_for(done, 10)
        stream.close()
        await adapter.watchdog.stop()
    finally:
        await routes.close()

    def comparable(events: list[ChatEvent]) -> list[object]:
        return [(type(event).__name__, getattr(event, "text", None)) for event in events]

    assert comparable(pulled) == comparable(pushed)
    assert any(type(event).__name__ == "TextDelta" for event in pulled)

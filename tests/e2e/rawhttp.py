"""HTTP spoken by hand over a loopback socket, for what ordinary clients refuse to send (bad bytes, HTTP/1.0,
trickled heads) and for reading a response exactly as it went over the wire."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from kimi_free_api.app import make_runner
from kimi_free_api.config import Settings
from kimi_free_api.emulator import Emulator, EmulatorConfig


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def split_response(raw: bytes) -> RawResponse:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = dechunk(body)
    return RawResponse(status, headers, body)


def dechunk(body: bytes) -> bytes:
    out = bytearray()
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return bytes(out)


def request_bytes(method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1".encode("latin-1"), b"Host: 127.0.0.1", b"Connection: close"]
    lines += [name + b": " + value for name, value in headers]
    if body:
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def exchange(port: int, data: bytes, timeout_s: float = 15.0) -> bytes:
    """Sends `data` and reads until the server closes: every request here asks for `Connection: close`."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


class ThreadedGateway:
    """The emulator and the gateway on their own event loop in a thread, so synchronous code (hypothesis) can
    drive them over real sockets."""

    def __init__(self, data_dir: Path, **overrides: Any) -> None:
        self._data_dir = data_dir
        self._overrides = overrides
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="gateway", daemon=True)
        self.port = 0
        self.emulator: Emulator | None = None
        self._runner: web.AppRunner | None = None

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(60)

    async def _start(self) -> None:
        self.emulator = Emulator(EmulatorConfig())
        await self.emulator.start("127.0.0.1", 0)
        settings = Settings(
            host="127.0.0.1",
            kimi_base_url=self.emulator.base_url,
            data_dir=str(self._data_dir),
            min_start_interval_s=0.0,
            conversation_ttl_s=0.0,
        ).with_overrides(**self._overrides)
        self._runner = make_runner(settings)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self.emulator is not None:
            await self.emulator.stop()

    def __enter__(self) -> ThreadedGateway:
        self._thread.start()
        self.call(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        self.call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@contextmanager
def threaded_gateway(data_dir: Path, **overrides: Any) -> Iterator[ThreadedGateway]:
    with ThreadedGateway(data_dir, **overrides) as gateway:
        yield gateway


async def timed_exchange(port: int, data: bytes, timeout_s: float = 30.0) -> list[tuple[float, bytes]]:
    """Sends `data` and reads until the server closes, noting when (seconds after sending) each read arrived."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        sent = loop.time()
        writer.write(data)
        pieces = []
        while chunk := await asyncio.wait_for(reader.read(65536), timeout_s):
            pieces.append((loop.time() - sent, chunk))
        return pieces
    finally:
        writer.close()


def sse_events(body: bytes) -> list[bytes]:
    """The events of an SSE body; asserts that nothing but events is in it (no framing bytes, no stray lines)."""
    assert body.endswith(b"\n\n"), body[-80:]
    events = body[:-2].split(b"\n\n")
    for event in events:
        assert event == b": keep-alive" or event.startswith(b"data: "), event[:80]
        if event.startswith(b"data: ") and event != b"data: [DONE]":
            orjson.loads(event[6:])
    assert events[-1] == b"data: [DONE]"
    return events


def streamed_text(events: list[bytes]) -> str:
    text = []
    for event in events:
        if event.startswith(b"data: {"):
            for choice in orjson.loads(event[6:])["choices"]:
                text.append(choice["delta"].get("content") or "")
    return "".join(text)

"""A loopback HTTP server that serves attachments to the gateway's fetcher, and minimal valid sample files.

It records every request it receives, so SSRF tests can prove that a refused URL was never fetched.
"""

from __future__ import annotations

import asyncio
import hashlib
import struct
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

STREAM_BLOCK = 64 * 1024


def png(width: int = 4, height: int = 3, seed: int = 0) -> bytes:
    """A valid RGB PNG; `seed` varies the pixels, so different seeds give different files."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes((x * 40 + y * 7 + seed) % 256 for x in range(width * 3)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def pdf(text: str = "Hello Kimi") -> bytes:
    """A valid one-page PDF showing `text` (ASCII), with a correct cross-reference table."""
    content = f"BT /F1 18 Tf 20 100 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 200] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%b\nendstream" % (len(content), content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%b\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def stream_block(index: int) -> bytes:
    """Block `index` of a generated text stream: 64 KiB of hex digits, different for every block."""
    return (hashlib.sha256(index.to_bytes(8, "big")).hexdigest() * (STREAM_BLOCK // 64)).encode()


def stream_digest(size: int) -> str:
    """The sha256 of the first `size` bytes of the generated stream."""
    digest = hashlib.sha256()
    for index in range(-(-size // STREAM_BLOCK)):
        digest.update(stream_block(index)[: size - index * STREAM_BLOCK])
    return digest.hexdigest()


@dataclass
class FileServer:
    """Routes: `/f/{name}` serves `files[name]`; `/stream/{size}` streams generated text (`?length=0` leaves out
    Content-Length); `/status/{code}`; `/redirect?to=<url>` answers 302; `/slow` starts a body and stalls. Bind it
    to any loopback address."""

    files: dict[str, bytes] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)
    # per finished /stream request: bytes written, and whether the whole body went out
    streams: list[tuple[int, bool]] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/f/{name}", self._file)
        app.router.add_get("/stream/{size}", self._stream)
        app.router.add_get("/status/{code}", self._status)
        app.router.add_get("/redirect", self._redirect)
        app.router.add_get("/slow", self._slow)
        app.middlewares.append(self._record)
        return app

    @web.middleware
    async def _record(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.hits.append(request.path_qs)
        return await handler(request)

    async def start(self, host: str = "127.0.0.1") -> None:
        # handler_cancellation: a stalled handler ends when its client leaves, so stop() need not wait for it.
        self._runner = web.AppRunner(self.make_app(), access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, 0)
        await site.start()
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    @property
    def port(self) -> int:
        assert self._runner is not None
        return int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _file(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self.files:
            raise web.HTTPNotFound()
        return web.Response(body=self.files[name], content_type="application/octet-stream")

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        size = int(request.match_info["size"])
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        if request.query.get("length") != "0":
            response.content_length = size
        written, completed = 0, False
        try:
            await response.prepare(request)
            for index in range(-(-size // STREAM_BLOCK)):
                block = stream_block(index)[: size - index * STREAM_BLOCK]
                await response.write(block)
                written += len(block)
            await response.write_eof()
            completed = True
            return response
        finally:
            self.streams.append((written, completed))

    async def _status(self, request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="nope")

    async def _redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    async def _slow(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"%PDF-")
        await asyncio.sleep(30)
        return response

"""Two tiny proxies on loopback for the per-account proxy tests: HTTP (CONNECT and absolute-URI forwarding) and
SOCKS5 (no authentication). Each records every connection it relays (how: CONNECT tunnel, absolute-URI forwarding
or SOCKS5, and to which host:port) and the bytes the client sent through it (plain HTTP to an emulator on HTTP, so
a test can tell whose calls passed; TLS to one on HTTPS), and refuses any target off loopback, so a test can never
reach out through them."""

from __future__ import annotations

import asyncio
import ipaddress
import struct
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: bytearray | None = None) -> None:
    try:
        while data := await reader.read(65536):
            if seen is not None:
                seen += data
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


@dataclass(frozen=True, slots=True)
class Relayed:
    # "connect": an HTTP CONNECT tunnel (what a client opens for https://), "forward": an absolute-URI request
    mode: Literal["connect", "forward", "socks5"]
    target: str  # host:port


class RecordingProxy:
    """Common part: a listening socket, the connections relayed, and the byte pump."""

    scheme = ""

    def __init__(self) -> None:
        self.relayed: list[Relayed] = []
        self.sent = bytearray()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def targets(self) -> list[str]:
        return [connection.target for connection in self.relayed]

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"{self.scheme}://{host}:{port}"

    async def start(self) -> RecordingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        """Closing every socket ends the relays by themselves (cancelling them would log their cancellation)."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self._relay(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            writer.close()
        finally:
            self._writers.discard(writer)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def _connect(
        self, mode: Literal["connect", "forward", "socks5"], host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if not _loopback(host):
            raise ValueError(f"refusing a target off loopback: {host}")
        self.relayed.append(Relayed(mode, f"{host}:{port}"))
        target = await asyncio.open_connection(host, port)
        self._writers.add(target[1])
        return target

    async def _both_ways(
        self,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        target: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        await asyncio.gather(_pipe(client[0], target[1], self.sent), _pipe(target[0], client[1]))


class HttpProxy(RecordingProxy):
    scheme = "http"

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, _version = head.split(b"\r\n", 1)[0].decode().split(" ")
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            upstream = await self._connect("connect", host, int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
        else:
            # Forwarding: the origin server reads the absolute-form request line as it is.
            parts = urlsplit(target)
            assert parts.hostname is not None
            upstream = await self._connect("forward", parts.hostname, parts.port or 80)
            self.sent += head
            upstream[1].write(head)
        await self._both_ways((reader, writer), upstream)


class Socks5Proxy(RecordingProxy):
    scheme = "socks5"

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        version, methods = await reader.readexactly(2)
        await reader.readexactly(methods)
        if version != 5:
            raise ValueError("not SOCKS5")
        writer.write(b"\x05\x00")  # no authentication
        _version, command, _reserved, kind = await reader.readexactly(4)
        if kind == 1:
            host = str(ipaddress.IPv4Address(await reader.readexactly(4)))
        elif kind == 4:
            host = str(ipaddress.IPv6Address(await reader.readexactly(16)))
        else:
            host = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
        (port,) = struct.unpack("!H", await reader.readexactly(2))
        if command != 1:
            raise ValueError("only CONNECT")
        upstream = await self._connect("socks5", host, port)
        writer.write(b"\x05\x00\x00\x01" + bytes(4) + b"\x00\x00")
        await writer.drain()
        await self._both_ways((reader, writer), upstream)

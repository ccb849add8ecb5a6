"""Downloading a client's http(s) URL: only from vetted addresses, redirects followed by hand, size and time capped.

Every hop (the URL and each redirect target) is vetted before it is requested, and the connector re-vets at
connect time (see `resolver`). The body is streamed into a `BlobWriter`, which stops the download the moment it
passes the size limit: a missing or lying Content-Length changes nothing. The whole fetch, redirects included, has
one deadline. No cookies are kept and no proxy is used: a proxy would resolve the name itself, out of our sight.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

import aiohttp
from aiohttp import SocketFactoryType
from aiohttp.abc import AbstractResolver
from yarl import URL

from kimi_free_api.core.attachments.blobs import AttachmentRejected, BlobWriter, too_large
from kimi_free_api.fetch.resolver import (
    AddressRefused,
    Vet,
    VettingResolver,
    check,
    parse_address,
    vetting_socket_factory,
)

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_READ_BYTES = 256 * 1024
_HEADERS = {"Accept": "*/*", "User-Agent": "Mozilla/5.0 (compatible; kimi-free-api attachment fetcher)"}


@dataclass(frozen=True, slots=True)
class FetchLimits:
    max_bytes: int
    timeout_s: float
    connect_timeout_s: float
    max_redirects: int = 5


def _unreachable(reason: str) -> AttachmentRejected:
    return AttachmentRejected(reason, "attachment_unreachable")


def _refused(error: AddressRefused) -> AttachmentRejected:
    return AttachmentRejected(f"{error} and this server does not fetch from such addresses", "attachment_url_refused")


def _name_in(url: URL) -> str:
    """The file name a URL suggests: its last path segment, decoded (the query is never part of it)."""
    return unquote(url.raw_path.rsplit("/", 1)[-1])


class SafeFetcher:
    def __init__(
        self,
        vet: Vet,
        limits: FetchLimits,
        *,
        inner_resolver: AbstractResolver | None = None,
        socket_factory: Callable[[Vet], SocketFactoryType] = vetting_socket_factory,
    ) -> None:
        """Call from a running loop. `inner_resolver` and `socket_factory` exist for tests, which must never
        open a connection outside loopback even if the guard under test is broken."""
        self._vet = vet
        self._limits = limits
        self._resolver = VettingResolver(vet, inner_resolver or aiohttp.ThreadedResolver())
        connector = aiohttp.TCPConnector(
            resolver=self._resolver, use_dns_cache=False, socket_factory=socket_factory(vet), limit=0
        )
        self._session = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False, headers=_HEADERS
        )

    async def close(self) -> None:
        await self._session.close()

    async def fetch(self, url: str, writer: BlobWriter) -> str:
        """Streams the document at `url` into `writer`; answers the file name the final URL suggests."""
        try:
            async with asyncio.timeout(self._limits.timeout_s):
                return await self._follow(URL(url), writer)
        # aiohttp's own timeouts are TimeoutErrors too: each says which limit cut the download.
        except aiohttp.SocketTimeoutError as exc:
            raise _unreachable(f"it stalled: nothing arrived for {self._limits.connect_timeout_s:g} s") from exc
        except aiohttp.ConnectionTimeoutError as exc:
            raise _unreachable(f"could not connect within {self._limits.connect_timeout_s:g} s") from exc
        except TimeoutError as exc:
            raise _unreachable(f"it did not arrive within {self._limits.timeout_s:g} s") from exc
        except AddressRefused as exc:
            raise _refused(exc) from exc
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, AddressRefused):
                raise _refused(exc.os_error) from exc
            raise _unreachable(f"could not connect to {exc.host}") from exc
        except (aiohttp.ClientError, ValueError) as exc:
            raise _unreachable(f"the download failed ({type(exc).__name__})") from exc

    async def _follow(self, url: URL, writer: BlobWriter) -> str:
        for _ in range(self._limits.max_redirects + 1):
            await self._vet_host(url)
            timeout = aiohttp.ClientTimeout(
                sock_connect=self._limits.connect_timeout_s, sock_read=self._limits.connect_timeout_s
            )
            async with self._session.get(url, allow_redirects=False, timeout=timeout) as response:
                if response.status in _REDIRECTS:
                    location = response.headers.get("Location")
                    if not location:
                        raise _unreachable(f"the server answered HTTP {response.status} without a Location")
                    url = url.join(URL(location))
                    continue
                if not 200 <= response.status < 300:
                    raise _unreachable(f"the server answered HTTP {response.status}")
                if (response.content_length or 0) > self._limits.max_bytes:
                    raise too_large(self._limits.max_bytes)
                async for chunk in response.content.iter_chunked(_READ_BYTES):
                    await writer.write(chunk)
                return _name_in(url)
        raise _unreachable(f"it redirects more than {self._limits.max_redirects} times")

    async def _vet_host(self, url: URL) -> None:
        if url.scheme not in ("http", "https") or not url.raw_host:
            raise AttachmentRejected("only http(s) URLs with a host can be fetched", "invalid_attachment_url")
        host = url.raw_host
        if parse_address(host) is not None:
            check(self._vet, host, host)
            return
        try:
            await self._resolver.resolve(host, url.port or 0, socket.AF_UNSPEC)
        except AddressRefused:
            raise
        except OSError as exc:
            raise _unreachable(f"its host {host} could not be resolved") from exc

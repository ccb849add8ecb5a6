"""Which way each account's traffic leaves: one aiohttp session per proxy, picked by the account's token.

Every call to Kimi for an account (chats, unary RPCs, token refresh, uploads to object storage) goes out through
that account's own proxy, or through `KIMI_PROXY` when it has none. HTTP proxies use aiohttp's own `proxy=`;
SOCKS proxies need a connector of their own (aiohttp-socks), so each distinct proxy URL gets its sessions, made on
first use and closed at shutdown. An account's proxy is looked up on every call, so a change applies to the next
call without a restart. Every session verifies Kimi's certificates against the system's CAs and `KIMI_CA_FILE`'s.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from kimi_free_api.config import SOCKS_SCHEMES, proxy_url_problem
from kimi_free_api.core.errors import UpstreamUnavailable

# What a call to Kimi raises when it cannot get through: aiohttp's own errors and, once a SOCKS session exists,
# aiohttp-socks' (a refused or failing SOCKS proxy raises those, which are no aiohttp errors).
_unreachable: tuple[type[Exception], ...] = (aiohttp.ClientError,)


def unreachable() -> tuple[type[Exception], ...]:
    """For `except unreachable():` around calls to Kimi; evaluated only when something was raised."""
    return _unreachable


def unreachable_reason(exc: Exception, peer: str = "Kimi") -> str:
    """What a client is told of a failure caught by `unreachable()`: the exception's class, never its text (which
    may quote a proxy URL), except for a certificate that failed, which has a fix the operator must know."""
    # Through a SOCKS proxy python-socks does the handshake, and aiohttp wraps its failure as a ClientOSError.
    if isinstance(exc, aiohttp.ClientConnectorCertificateError) or isinstance(
        exc.__cause__, ssl.SSLCertVerificationError
    ):
        return f"{peer}'s TLS certificate could not be verified (KIMI_CA_FILE adds trusted CAs)"
    return type(exc).__name__


# A token's own proxy URL, or "" for the global one.
ProxyOf = Callable[[str], str]


def trusted(ca_file: str) -> ssl.SSLContext | bool:
    """What a connector to Kimi verifies certificates with: aiohttp's default (True: the system's CAs), or the
    system's CAs and those of `ca_file` (KIMI_CA_FILE, checked by config.py)."""
    if not ca_file:
        return True
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=ca_file)
    context.set_alpn_protocols(("http/1.1",))  # as aiohttp's default context offers: it speaks nothing else
    return context


@dataclass(slots=True)
class _Route:
    kimi: aiohttp.ClientSession
    # Presigned uploads go to object storage: no cookie jar, and none of Kimi's headers (see upstream/files.py).
    storage: aiohttp.ClientSession


class ProxyRoutes:
    def __init__(self, default_proxy: str, proxy_of: ProxyOf | None = None, *, ca_file: str = "") -> None:
        self._default = default_proxy
        self._proxy_of = proxy_of or (lambda _token: "")
        self._ssl = trusted(ca_file)
        self._routes: dict[str, _Route] = {}

    def proxy_for(self, token: str) -> str:
        return self._proxy_of(token) or self._default

    def kimi(self, token: str) -> aiohttp.ClientSession:
        """The session for calls to Kimi made with this token."""
        return self._route(self.proxy_for(token)).kimi

    def storage(self, token: str) -> aiohttp.ClientSession:
        """The cookie-less session for this token's uploads to object storage."""
        return self._route(self.proxy_for(token)).storage

    def _route(self, proxy: str) -> _Route:
        route = self._routes.get(proxy)
        if route is None:
            problem = proxy_url_problem(proxy)
            if problem:  # set by hand in the store, or by the admin console: not checked on the way in
                raise UpstreamUnavailable(f"This account's proxy cannot be used: {problem}", code="bad_proxy")
            route = self._routes[proxy] = _Route(
                _session(proxy, aiohttp.CookieJar(), self._ssl), _session(proxy, aiohttp.DummyCookieJar(), self._ssl)
            )
        return route

    async def close(self) -> None:
        for route in self._routes.values():
            await route.kimi.close()
            await route.storage.close()
        self._routes.clear()


def _session(proxy: str, cookies: aiohttp.abc.AbstractCookieJar, trust: ssl.SSLContext | bool) -> aiohttp.ClientSession:
    # limit=0: the default pool of 100 would queue the 101st concurrent stream.
    if proxy and urlsplit(proxy).scheme.lower() in SOCKS_SCHEMES:
        # Imported only when configured, like the Redis client: most gateways never use a SOCKS proxy (0.5 MB).
        from aiohttp_socks import ProxyConnectionError, ProxyConnector, ProxyError, ProxyTimeoutError

        global _unreachable  # noqa: PLW0603 (the SOCKS errors exist only once their package is loaded)
        _unreachable = (aiohttp.ClientError, ProxyError, ProxyConnectionError, ProxyTimeoutError)

        # Its keyword arguments go to aiohttp's TCPConnector, whose `ssl` it applies to the tunnelled TLS.
        connector: aiohttp.BaseConnector = ProxyConnector.from_url(proxy, limit=0, ttl_dns_cache=300, ssl=trust)
        return aiohttp.ClientSession(connector=connector, cookie_jar=cookies, trust_env=False)
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, ssl=trust)
    return aiohttp.ClientSession(connector=connector, cookie_jar=cookies, trust_env=False, proxy=proxy or None)

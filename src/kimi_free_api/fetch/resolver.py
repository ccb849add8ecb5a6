"""Making aiohttp connect only to addresses the policy allows, whatever DNS answers next time.

Three checks, each closing a gap the others leave:

* `VettingResolver.resolve` vets every address a name resolves to and hands aiohttp only vetted ones, so the
  connection goes to an address that was checked (the name is never resolved again by someone else). A name with
  one bad address is refused whole: a mix of public and private answers is a rebinding trick, not an accident.
* aiohttp does not ask the resolver about hosts that look numeric (`127.1`, `2130706433`, `[::1]`), so the socket
  factory vets the exact address of every connection just before it is made; the kernel's lenient IPv4 parsing
  (`inet_aton`) is applied first, so no spelling slips through.
* Redirects are followed by the fetcher itself, which runs the first check again for every hop.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

from aiohttp import AddrInfoType, SocketFactoryType
from aiohttp.abc import AbstractResolver, ResolveResult

from kimi_free_api.fetch.policy import IPAddress, refusal


class AddressRefused(OSError):
    """A fetch would connect to an address the policy forbids. An OSError, so it survives aiohttp's wrapping."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        self.host = host
        self.address = address
        self.reason = reason
        where = host if host == address else f"{host} ({address})"
        article = "an" if reason[0] in "aeiou" else "a"
        super().__init__(f"{where} is {article} {reason} address")


def parse_address(text: str) -> IPAddress | None:
    """An address as the kernel reads it, including legacy IPv4 spellings such as `127.1` or `0x7f000001`."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        return None


Vet = Callable[[IPAddress], str | None]


def policy_vet(allow_loopback: bool) -> Vet:
    def vet(address: IPAddress) -> str | None:
        return refusal(address, allow_loopback=allow_loopback)

    return vet


class VettingResolver(AbstractResolver):
    """Resolves with `inner` (the system resolver by default) and answers only addresses `vet` accepts."""

    def __init__(self, vet: Vet, inner: AbstractResolver) -> None:
        self._vet = vet
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            check(self._vet, host, result["host"])
        return results

    async def close(self) -> None:
        await self._inner.close()


def check(vet: Vet, host: str, text: str) -> None:
    """Raises `AddressRefused` unless `text` is an address `vet` accepts."""
    address = parse_address(text.split("%", 1)[0])
    if address is None:
        raise AddressRefused(host, text, "unparseable")
    reason = vet(address)
    if reason is not None:
        raise AddressRefused(host, str(address), reason)


def vetting_socket_factory(vet: Vet) -> SocketFactoryType:
    """A socket factory for aiohttp's connector that refuses to create a socket for a forbidden address."""

    def create(addr_info: AddrInfoType) -> socket.socket:
        family, kind, proto, _, sockaddr = addr_info
        check(vet, str(sockaddr[0]), str(sockaddr[0]))
        return socket.socket(family=family, type=kind, proto=proto)

    return create

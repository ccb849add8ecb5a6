"""The fetcher against loopback servers, with an injected DNS and a guard on every connection attempt.

The guard lets connections reach loopback only, whatever the policy under test decides, so no test here can open
a connection outside 127.0.0.0/8 and ::1 even if the SSRF defences are broken; the fake DNS answers made-up names
(public or internal), so no test queries a real resolver either.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import AsyncIterator, Callable
from ipaddress import IPv4Address

import pytest
from aiohttp import AddrInfoType, SocketFactoryType
from aiohttp.abc import AbstractResolver, ResolveResult

from kimi_free_api.core.attachments.blobs import AttachmentRejected, BlobWriter
from kimi_free_api.fetch.fetcher import FetchLimits, SafeFetcher
from kimi_free_api.fetch.policy import IPAddress, refusal
from kimi_free_api.fetch.resolver import AddressRefused, Vet, parse_address, policy_vet, vetting_socket_factory
from tests.fileserver import FileServer, png, stream_digest

MiB = 1024 * 1024
PUBLIC = "93.184.216.34"
PUBLIC_STAND_IN = IPv4Address("127.0.0.2")  # a loopback address the redirect tests' policy treats as public


class FakeDNS(AbstractResolver):
    """Answers from a table of names to addresses; `changing` names give their next answer on each query."""

    def __init__(
        self, table: dict[str, list[str]] | None = None, changing: dict[str, list[list[str]]] | None = None
    ) -> None:
        self._table = table or {}
        self._changing = changing or {}
        self.queries: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.queries.append(host)
        answers = self._changing[host].pop(0) if host in self._changing else self._table.get(host)
        if answers is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            ResolveResult(
                hostname=host,
                host=str(address),
                port=port,
                family=socket.AF_INET6 if ":" in str(address) else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in answers
        ]

    async def close(self) -> None:
        return None


class LoopbackOnly:
    """Wraps the fetcher's socket factory: records every connection attempt and refuses all but loopback."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    def __call__(self, vet: Vet) -> SocketFactoryType:
        guarded = vetting_socket_factory(vet)

        def create(addr_info: AddrInfoType) -> socket.socket:
            host = str(addr_info[4][0])
            self.attempts.append(host)
            address = parse_address(host)
            if address is None or not address.is_loopback:
                raise OSError(errno.EHOSTUNREACH, f"the test guard refused a connection to {host}")
            return guarded(addr_info)

        return create


@pytest.fixture
async def server() -> AsyncIterator[FileServer]:
    files = FileServer(files={"secret.png": png()})
    await files.start("127.0.0.1")
    try:
        yield files
    finally:
        await files.stop()


@pytest.fixture
async def stand_in() -> AsyncIterator[FileServer]:
    """A server the redirect tests' policy treats as a public host."""
    files = FileServer(files={"ok.png": png(seed=3)})
    await files.start(str(PUBLIC_STAND_IN))
    try:
        yield files
    finally:
        await files.stop()


def stand_in_is_public(address: IPAddress) -> str | None:
    return None if address == PUBLIC_STAND_IN else refusal(address)


async def fetch(
    url: str,
    *,
    dns: FakeDNS | None = None,
    vet: Vet | None = None,
    guard: LoopbackOnly | None = None,
    limits: FetchLimits | None = None,
) -> tuple[int, str, str]:
    """Fetches `url`; answers the size, the sha256 and the name it suggests."""
    fetcher = SafeFetcher(
        vet or policy_vet(allow_loopback=False),
        limits or FetchLimits(max_bytes=64 * MiB, timeout_s=10, connect_timeout_s=5),
        inner_resolver=dns or FakeDNS({}),
        socket_factory=guard or LoopbackOnly(),
    )
    writer = BlobWriter(64 * MiB)
    try:
        name = await fetcher.fetch(url, writer)
        blob = await writer.finish()
        blob.close()
        return blob.size, blob.sha256, name
    finally:
        writer.discard()
        await fetcher.close()


async def refused(url: str, **kwargs: object) -> AttachmentRejected:
    with pytest.raises(AttachmentRejected) as caught:
        await fetch(url, **kwargs)  # type: ignore[arg-type]
    return caught.value


INTERNAL_NAMES: dict[str, list[str]] = {
    "intranet.test": ["10.1.2.3"],
    "router.test": ["192.168.0.1"],
    "docker.test": ["172.20.0.5"],
    "metadata.test": ["169.254.169.254"],
    "metadata6.test": ["fd00:ec2::254"],
    "ula.test": ["fc00::5"],
    "linklocal.test": ["fe80::1"],
    "cgnat.test": ["100.64.1.1"],
    "mapped.test": ["::ffff:10.0.0.1"],
    "nat64.test": ["64:ff9b::a9fe:a9fe"],
    "zero.test": ["0.0.0.0"],
    "loopback.test": ["127.0.0.1"],
    "mixed.test": [PUBLIC, "10.0.0.1"],  # one bad answer spoils the name
}


@pytest.mark.parametrize("name", sorted(INTERNAL_NAMES))
async def test_names_resolving_to_internal_addresses_are_refused_before_any_connection(
    server: FileServer, name: str
) -> None:
    guard = LoopbackOnly()
    error = await refused(f"http://{name}:{server.port}/f/secret.png", dns=FakeDNS(dict(INTERNAL_NAMES)), guard=guard)
    assert error.code == "attachment_url_refused"
    assert name in error.reason
    assert guard.attempts == [] and server.hits == []


@pytest.mark.parametrize(
    "host",
    [
        "10.0.0.1",
        "169.254.169.254",
        "0251.0376.0251.0376",  # 169.254.169.254 in octal
        "2852039166",  # 169.254.169.254 as one number
        "[fd00:ec2::254]",
        "[::ffff:169.254.169.254]",
        "[fe80::1]",
        "192.168.1.1",
        "224.0.0.1",
    ],
)
async def test_internal_address_literals_are_refused_before_any_connection(host: str) -> None:
    guard = LoopbackOnly()
    error = await refused(f"http://{host}/latest/meta-data/", guard=guard)
    assert error.code == "attachment_url_refused"
    assert guard.attempts == []


async def test_a_public_name_is_connected_to_at_its_vetted_address_only() -> None:
    guard = LoopbackOnly()
    error = await refused("http://public.test/a.png", dns=FakeDNS({"public.test": [PUBLIC]}), guard=guard)
    assert error.code == "attachment_unreachable"
    assert guard.attempts == [PUBLIC], "the guard (standing in for the network) saw the vetted address only"


async def test_dns_rebinding_cannot_swap_in_an_internal_address(server: FileServer) -> None:
    # The first answer (the check) is public, the next one (the connection) is the loopback server.
    dns = FakeDNS(changing={"rebind.test": [[PUBLIC], ["127.0.0.1"], ["127.0.0.1"]]})
    guard = LoopbackOnly()
    error = await refused(f"http://rebind.test:{server.port}/f/secret.png", dns=dns, guard=guard)
    assert error.code == "attachment_url_refused"
    assert "rebind.test (127.0.0.1) is a loopback address" in error.reason
    assert dns.queries == ["rebind.test", "rebind.test"], "the connection resolved again, through the vetting"
    assert guard.attempts == [] and server.hits == []


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/f/secret.png",
        "http://localhost:{port}/f/secret.png",
        "http://internal.test:{port}/f/secret.png",
        "http://[::1]:{port}/f/secret.png",
        "http://2130706433:{port}/f/secret.png",
        "http://169.254.169.254/latest/meta-data/",
    ],
)
async def test_redirects_are_vetted_at_every_hop(stand_in: FileServer, server: FileServer, target: str) -> None:
    dns = FakeDNS({"public.test": [str(PUBLIC_STAND_IN)], "internal.test": ["127.0.0.1"], "localhost": ["127.0.0.1"]})
    guard = LoopbackOnly()
    url = f"http://public.test:{stand_in.port}/redirect?to={target.format(port=server.port)}"
    error = await refused(url, dns=dns, vet=stand_in_is_public, guard=guard)
    assert error.code == "attachment_url_refused"
    assert len(stand_in.hits) == 1 and server.hits == []
    assert set(guard.attempts) == {str(PUBLIC_STAND_IN)}


async def test_redirects_are_followed(stand_in: FileServer) -> None:
    dns = FakeDNS({"public.test": [str(PUBLIC_STAND_IN)]})
    url = f"http://public.test:{stand_in.port}/redirect?to=/redirect%3Fto%3D/f/ok.png"
    size, _, name = await fetch(url, dns=dns, vet=stand_in_is_public)
    assert (size, name) == (len(png(seed=3)), "ok.png")
    assert len(stand_in.hits) == 3 and stand_in.hits[-2:] == ["/redirect?to=/f/ok.png", "/f/ok.png"]


async def test_redirect_limits(server: FileServer) -> None:
    loopback = policy_vet(allow_loopback=True)
    chain = f"{server.url}/f/secret.png"
    for _ in range(3):
        chain = f"{server.url}/redirect?to={chain.replace('%', '%25').replace('?', '%3F').replace('=', '%3D')}"
    limits = FetchLimits(max_bytes=MiB, timeout_s=10, connect_timeout_s=5, max_redirects=2)
    error = await refused(chain, vet=loopback, limits=limits)
    assert (error.code, error.reason) == ("attachment_unreachable", "it redirects more than 2 times")
    error = await refused(f"{server.url}/redirect?to=ftp://example.com/x", vet=loopback)
    assert error.code == "invalid_attachment_url"


@pytest.mark.parametrize("length", ["0", "1"], ids=["chunked", "content-length"])
async def test_the_size_cap_holds_while_streaming(server: FileServer, length: str) -> None:
    limits = FetchLimits(max_bytes=MiB, timeout_s=10, connect_timeout_s=5)
    fetcher = SafeFetcher(policy_vet(allow_loopback=True), limits, socket_factory=LoopbackOnly())
    writer = BlobWriter(MiB)
    try:
        with pytest.raises(AttachmentRejected) as caught:
            await fetcher.fetch(f"{server.url}/stream/{32 * MiB}?length={length}", writer)
    finally:
        writer.discard()
        await fetcher.close()
    assert caught.value.code == "attachment_too_large"
    assert writer.size <= MiB + 256 * 1024


async def test_a_whole_stream_arrives_intact(server: FileServer) -> None:
    size = 3 * MiB + 5
    got = await fetch(f"{server.url}/stream/{size}?length=0", vet=policy_vet(allow_loopback=True))
    assert got == (size, stream_digest(size), str(size))


async def test_the_deadline_covers_the_whole_download(server: FileServer) -> None:
    limits = FetchLimits(max_bytes=MiB, timeout_s=0.3, connect_timeout_s=5)
    error = await refused(f"{server.url}/slow", vet=policy_vet(allow_loopback=True), limits=limits)
    assert (error.code, error.reason) == ("attachment_unreachable", "it did not arrive within 0.3 s")


async def test_a_stalled_download_names_the_limit_that_cut_it(server: FileServer) -> None:
    limits = FetchLimits(max_bytes=MiB, timeout_s=10, connect_timeout_s=0.3)
    error = await refused(f"{server.url}/slow", vet=policy_vet(allow_loopback=True), limits=limits)
    assert (error.code, error.reason) == ("attachment_unreachable", "it stalled: nothing arrived for 0.3 s")


async def test_http_errors_and_dead_hosts_are_unreachable(server: FileServer) -> None:
    loopback = policy_vet(allow_loopback=True)
    assert (await refused(f"{server.url}/status/503", vet=loopback)).reason == "the server answered HTTP 503"
    assert (await refused("http://nowhere.test/x")).reason == "its host nowhere.test could not be resolved"


@pytest.mark.parametrize(
    ("host", "refused_as"),
    [("10.0.0.1", "private"), ("127.1", "loopback"), ("169.254.169.254", "cloud metadata"), ("::1", "loopback")],
)
def test_the_socket_factory_refuses_internal_addresses(host: str, refused_as: str) -> None:
    create: Callable[[AddrInfoType], socket.socket] = vetting_socket_factory(policy_vet(allow_loopback=False))
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with pytest.raises(AddressRefused) as caught:
        create((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, 80)))
    assert caught.value.reason == refused_as
    sock = create((socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (PUBLIC, 80)))
    sock.close()  # created, never connected

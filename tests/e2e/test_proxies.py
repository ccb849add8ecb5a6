"""Per-account proxies: every Kimi call an account makes (token refresh, chat, unary RPCs, uploads to object storage)
goes out through that account's own proxy, and accounts without one through KIMI_PROXY. The proxies are real ones
on loopback (tests/proxies.py) that record the bytes passing through, so the test reads whose calls each carried.
With the emulator on HTTPS (as Kimi always is) the HTTP proxy tunnels with CONNECT and sees only TLS, verified
against KIMI_CA_FILE."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import openai
import pytest
import trustme
from openai import AsyncOpenAI

from kimi_free_api.emulator import Emulator
from kimi_free_api.pool.accounts import account_id
from kimi_free_api.state.sqlite import SqliteStore
from kimi_free_api.upstream import jwt
from tests.e2e.support import GatewayFactory, eventually, openai_client
from tests.fileserver import png
from tests.proxies import HttpProxy, RecordingProxy, Relayed, Socks5Proxy
from tests.tls import HTTPS

API_KEY = "proxy-test-key-0123456789"
ADMIN_KEY = "proxy-test-admin-key-0123456789"
_BEARER = re.compile(rb"Bearer ([A-Za-z0-9_.-]+)")
_TLS_HANDSHAKE = b"\x16\x03"  # the first bytes of a TLS record carrying a ClientHello
on_https = pytest.mark.parametrize("emulator", [HTTPS], indirect=True)


@pytest.fixture
async def proxies() -> AsyncIterator[tuple[RecordingProxy, RecordingProxy, RecordingProxy]]:
    started = (await HttpProxy().start(), await Socks5Proxy().start(), await HttpProxy().start())
    try:
        yield started
    finally:
        for proxy in started:
            await proxy.stop()


def users_behind(proxy: RecordingProxy) -> set[str]:
    """The Kimi users whose credentials (refresh or access tokens) went through this proxy."""
    return {str(jwt.claims(token.decode()).get("sub")) for token in _BEARER.findall(bytes(proxy.sent))}


async def ask_with_picture(client: AsyncOpenAI, seed: int) -> str:
    picture = base64.b64encode(png(seed=seed)).decode()
    reply = await client.chat.completions.create(
        model="kimi",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{picture}"}},
                    {"type": "text", "text": f"what is on picture {seed}?"},
                ],
            }
        ],
    )
    return reply.choices[0].message.content or ""


async def test_each_account_goes_through_its_own_proxy_and_the_rest_through_kimi_proxy(
    proxies: tuple[RecordingProxy, RecordingProxy, RecordingProxy],
    gateway_factory: GatewayFactory,
    emulator: Emulator,
    tmp_path: Path,
) -> None:
    global_proxy, socks, http = proxies
    alice, bob, carol = (emulator.create_account(name) for name in ("alice", "bob", "carol"))
    data_dir = tmp_path / "proxied"
    store = SqliteStore.in_dir(str(data_dir))
    store.add_account(account_id(alice.refresh_token), alice.refresh_token, "alice", socks.url)
    bob_proxy = http.url.replace("http://", "http://bob:pr0xy-secret@")
    store.add_account(account_id(bob.refresh_token), bob.refresh_token, "bob", bob_proxy)
    store.close()
    gateway = await gateway_factory(
        data_dir=str(data_dir),
        kimi_proxy=global_proxy.url,
        api_keys=API_KEY,
        allow_client_tokens="true",
        kimi_upload_flow="presign",
        admin_key=ADMIN_KEY,
    )
    async with openai_client(gateway, API_KEY) as server_accounts:
        for seed in range(4):  # the two server accounts take turns
            assert await ask_with_picture(server_accounts, seed)
    async with openai_client(gateway, carol.refresh_token) as own_token:
        assert await ask_with_picture(own_token, 9)

    assert users_behind(socks) == {alice.user_id}
    assert users_behind(http) == {bob.user_id}
    assert users_behind(global_proxy) == {carol.user_id}
    emulator_address = emulator.base_url.removeprefix("http://")
    for proxy in proxies:
        sent = bytes(proxy.sent)
        assert b"/api/account.gateway.v1.AuthService/RefreshToken" in sent  # the token exchange
        assert b".ChatService/Chat HTTP/1.1" in sent  # the answer's stream
        assert re.search(rb"PUT \S+ HTTP/1.1\r\n", sent)  # the presigned upload to object storage
        assert set(proxy.relayed) == {Relayed("socks5" if proxy is socks else "forward", emulator_address)}
    assert len(emulator.state.files) == 5  # one upload per answer
    credentials = base64.b64encode(b"bob:pr0xy-secret")
    assert b"Proxy-Authorization: Basic " + credentials in bytes(http.sent)

    async with (
        aiohttp.ClientSession() as session,
        session.get(gateway.url + "/admin/accounts", headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as response,
    ):
        listed = {account["id"]: account["proxy"] for account in (await response.json())["data"]}
    assert listed[account_id(alice.refresh_token)] == socks.url
    assert listed[account_id(bob.refresh_token)] == bob_proxy.replace("pr0xy-secret", "***")
    assert listed[account_id(carol.refresh_token)] is None


async def test_a_socks_proxy_can_be_the_global_one(
    proxies: tuple[RecordingProxy, RecordingProxy, RecordingProxy],
    gateway_factory: GatewayFactory,
    emulator: Emulator,
) -> None:
    """KIMI_PROXY may be a SOCKS5 proxy as well: a client-sent token's calls go through it."""
    _, socks, _ = proxies
    account = emulator.create_account("dora")
    gateway = await gateway_factory(kimi_proxy=socks.url)
    async with openai_client(gateway, account.refresh_token) as client:
        reply = await client.chat.completions.create(model="kimi", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content
    assert users_behind(socks) == {account.user_id}


def _trusting(ca: trustme.CA, tmp_path: Path) -> str:
    """KIMI_CA_FILE for an emulator on HTTPS: its authority's PEM."""
    path = tmp_path / "kimi-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@on_https
async def test_through_tls_each_route_verifies_kimi_with_kimi_ca_file(
    proxies: tuple[RecordingProxy, RecordingProxy, RecordingProxy],
    gateway_factory: GatewayFactory,
    emulator: Emulator,
    tls_ca: trustme.CA,
    tmp_path: Path,
) -> None:
    """Alice's calls go through a SOCKS5 proxy, Bob's through an HTTP proxy (CONNECT tunnels), Carol's straight:
    each token refresh, chat and presigned upload verifies the emulator's certificate against KIMI_CA_FILE, and
    the proxies carry TLS only."""
    _, socks, http = proxies
    alice, bob, carol = (emulator.create_account(name) for name in ("alice", "bob", "carol"))
    data_dir = tmp_path / "proxied"
    store = SqliteStore.in_dir(str(data_dir))
    store.add_account(account_id(alice.refresh_token), alice.refresh_token, "alice", socks.url)
    store.add_account(account_id(bob.refresh_token), bob.refresh_token, "bob", http.url)
    store.close()
    gateway = await gateway_factory(
        data_dir=str(data_dir),
        kimi_ca_file=_trusting(tls_ca, tmp_path),
        api_keys=API_KEY,
        allow_client_tokens="true",
        kimi_upload_flow="presign",
    )
    async with openai_client(gateway, API_KEY) as server_accounts:
        for seed in range(4):  # the two server accounts take turns
            assert await ask_with_picture(server_accounts, seed)
    await eventually(lambda: emulator.state.deleted == 4)  # nothing of theirs is still on its way
    for proxy in (socks, http):
        await proxy.stop()  # Carol's calls could not get through them
    async with openai_client(gateway, carol.refresh_token) as own_token:  # no proxy of her own, no KIMI_PROXY
        assert await ask_with_picture(own_token, 9)

    emulator_address = emulator.base_url.removeprefix("https://")
    assert set(http.relayed) == {Relayed("connect", emulator_address)}
    assert set(socks.relayed) == {Relayed("socks5", emulator_address)}
    secrets = [token.encode() for user in (alice, bob, carol) for token in (user.refresh_token, user.access_token)]
    for proxy in (socks, http):
        sent = bytes(proxy.sent)
        assert sent.startswith(_TLS_HANDSHAKE)
        for plaintext in (b"Bearer", b"Authorization", b"RefreshToken", b"ChatService", *secrets):
            assert plaintext not in sent
    state = emulator.state
    users = (alice.user_id, bob.user_id, carol.user_id)
    assert state.refreshes >= 3 and all(state.opened_streams.get(user) for user in users)
    assert {file.owner for file in state.files.values()} == set(users)
    assert {stored.owner for stored in state.objects.values() if stored.uploaded} == set(users)


@on_https
@pytest.mark.parametrize("route", ["direct", "socks5", "http"])
async def test_without_kimi_ca_file_an_unknown_authority_is_a_502_naming_the_setting(
    proxies: tuple[RecordingProxy, RecordingProxy, RecordingProxy],
    gateway_factory: GatewayFactory,
    emulator: Emulator,
    route: str,
) -> None:
    _, socks, http = proxies
    account = emulator.create_account("dora")
    gateway = await gateway_factory(kimi_proxy={"direct": "", "socks5": socks.url, "http": http.url}[route])
    async with openai_client(gateway, account.refresh_token) as client:
        with pytest.raises(openai.APIStatusError) as failed:
            await client.chat.completions.create(model="kimi", messages=[{"role": "user", "content": "hi"}])
    assert failed.value.status_code == 502
    assert isinstance(failed.value.body, dict)
    message = failed.value.body["message"]
    assert "TLS certificate could not be verified (KIMI_CA_FILE adds trusted CAs)" in message
    assert account.refresh_token not in message and "eyJ" not in message
    assert emulator.state.refreshes == 0

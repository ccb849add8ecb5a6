"""The 2026 token flow: the auth host's RefreshToken call, the legacy fallback, rejected access tokens, warm-up."""

from __future__ import annotations

from typing import Any

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI

from kimi_free_api.config import Settings
from kimi_free_api.emulator import Emulator, Fault
from kimi_free_api.emulator.answers import expected_answer
from kimi_free_api.upstream.auth import TokenResolver
from tests.e2e.support import GatewayFactory, eventually, openai_client

API_KEY = "gateway-key-for-tests-0123"


async def _ask(client: AsyncOpenAI, text: str = "hi") -> str:
    reply = await client.chat.completions.create(model="kimi", messages=[{"role": "user", "content": text}])
    return reply.choices[0].message.content or ""


async def test_the_default_is_the_connect_refresh_call(gateway_factory: GatewayFactory, emulator: Emulator) -> None:
    emulator.configure(refresh_endpoints="connect")  # the legacy GET would answer 404
    account = emulator.create_account("connect")
    async with openai_client(await gateway_factory(), account.refresh_token) as client:
        assert await _ask(client) == expected_answer("hi", emulator.config)
    assert (emulator.state.requests["refresh"], emulator.state.refreshes) == (1, 1)


async def test_the_legacy_call_takes_over_where_the_connect_call_is_missing(
    gateway_factory: GatewayFactory, emulator: Emulator
) -> None:
    emulator.configure(refresh_endpoints="rest")
    first, second = emulator.create_account("one"), emulator.create_account("two")
    gateway = await gateway_factory()
    async with openai_client(gateway, first.refresh_token) as client:
        assert await _ask(client)
    assert (emulator.state.requests["refresh"], emulator.state.refreshes) == (2, 1), "a 404, then the legacy GET"
    async with openai_client(gateway, second.refresh_token) as client:
        assert await _ask(client)
    assert (emulator.state.requests["refresh"], emulator.state.refreshes) == (3, 2), "the fallback is remembered"


async def test_the_rest_style_is_selectable(gateway_factory: GatewayFactory, emulator: Emulator) -> None:
    emulator.configure(refresh_endpoints="rest")
    account = emulator.create_account("rest")
    async with openai_client(await gateway_factory(kimi_refresh_style="rest"), account.refresh_token) as client:
        assert await _ask(client)
    assert (emulator.state.requests["refresh"], emulator.state.refreshes) == (1, 1)


async def test_a_refresh_endpoint_missing_everywhere_is_a_clear_error(
    gateway_factory: GatewayFactory, emulator: Emulator
) -> None:
    emulator.configure(refresh_endpoints="connect")
    account = emulator.create_account("nowhere")
    gateway = await gateway_factory(kimi_refresh_style="rest")
    async with openai_client(gateway, account.refresh_token) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await _ask(client)
    assert caught.value.status_code == 502
    assert "KIMI_REFRESH_STYLE" in caught.value.message
    assert account.refresh_token not in caught.value.message


async def test_a_rejected_access_token_is_not_read_back_from_the_token_cache(
    gateway_factory: GatewayFactory, emulator: Emulator
) -> None:
    """Kimi rejects an access token before its expiry (revoked): the gateway exchanges again and answers."""
    account = emulator.create_account("revoked")
    async with openai_client(await gateway_factory(), account.refresh_token) as client:
        assert await _ask(client, "before")
        emulator.revoke_access_tokens(account.user_id)
        assert await _ask(client, "after") == expected_answer("after", emulator.config)
    assert emulator.state.refreshes == 2


async def test_a_server_account_survives_a_revoked_access_token(
    gateway_factory: GatewayFactory, emulator: Emulator
) -> None:
    account = emulator.create_account("server")
    gateway = await gateway_factory(kimi_tokens=account.refresh_token, api_keys=API_KEY)
    async with openai_client(gateway, API_KEY) as client:
        assert await _ask(client, "one")
        emulator.revoke_access_tokens(account.user_id)
        assert await _ask(client, "two")
        assert await _ask(client, "three"), "the account was not marked dead"


@pytest.mark.parametrize("error_style", ["frame", "trailer"])
async def test_unauthenticated_inside_a_stream_renews_and_resends_once(
    gateway_factory: GatewayFactory, emulator: Emulator, error_style: str
) -> None:
    """Streams answer HTTP 200, so Kimi's rejection arrives in-band (evidence row 24, S4): renew, resend once."""
    emulator.configure(error_style=error_style)
    account = emulator.create_account("in-band")
    async with openai_client(await gateway_factory(), account.refresh_token) as client:
        assert await _ask(client, "warm")
        emulator.add_fault(Fault(kind="stream_unauthenticated"))
        assert await _ask(client, "again") == expected_answer("again", emulator.config)
    assert emulator.state.requests["chat"] == 3
    assert emulator.state.refreshes == 2, "one exchange at first use, one renewal"


async def test_a_second_rejection_inside_the_stream_is_final(
    gateway_factory: GatewayFactory, emulator: Emulator
) -> None:
    account = emulator.create_account("rejected")
    async with openai_client(await gateway_factory(), account.refresh_token) as client:
        assert await _ask(client, "warm")
        emulator.add_fault(Fault(kind="stream_unauthenticated", times=5))
        with pytest.raises(openai.AuthenticationError):
            await _ask(client)
    assert emulator.state.requests["chat"] == 3, "sent, renewed, resent once; not again"
    assert emulator.state.refreshes == 2


async def test_a_just_exchanged_token_rejected_in_the_stream_is_final(
    gateway_factory: GatewayFactory, emulator: Emulator
) -> None:
    account = emulator.create_account("cold")
    emulator.add_fault(Fault(kind="stream_unauthenticated", times=5))
    async with openai_client(await gateway_factory(), account.refresh_token) as client:
        with pytest.raises(openai.AuthenticationError):
            await _ask(client)
    assert (emulator.state.requests["chat"], emulator.state.refreshes) == (1, 1), "exchanging again cannot help"


async def test_server_accounts_are_exchanged_at_start_up(gateway_factory: GatewayFactory, emulator: Emulator) -> None:
    accounts = [emulator.create_account(f"warm{n}") for n in range(12)]
    overrides: dict[str, Any] = {"token_warmup_concurrency": 4}
    gateway = await gateway_factory(
        kimi_tokens=",".join(a.refresh_token for a in accounts), api_keys=API_KEY, **overrides
    )
    await eventually(lambda: emulator.state.refreshes == len(accounts))
    async with openai_client(gateway, API_KEY) as client:
        for n in range(3):
            assert await _ask(client, f"warm {n}")
    assert emulator.state.refreshes == len(accounts), "no request paid an exchange"


async def test_a_late_rejection_of_an_old_token_keeps_the_new_one(emulator: Emulator) -> None:
    """Two requests held the same access token; the second to hear Kimi reject it must not drop the renewal."""
    account = emulator.create_account("racing")
    async with aiohttp.ClientSession() as session:
        resolver = TokenResolver(lambda _token: session, Settings(kimi_base_url=emulator.base_url))
        old = await resolver.access(account.refresh_token)
        resolver.invalidate(account.refresh_token, old.token)
        new = await resolver.access(account.refresh_token)
        resolver.invalidate(account.refresh_token, old.token)  # the slower request's 401 for the old token
        assert (await resolver.access(account.refresh_token)).token == new.token != old.token
    assert emulator.state.refreshes == 2


async def test_a_refresh_token_rotated_by_another_holder_is_explained(
    gateway_factory: GatewayFactory, emulator: Emulator
) -> None:
    account = emulator.create_account("shared")
    first, second = await gateway_factory(), await gateway_factory()  # separate token caches: two holders
    async with openai_client(first, account.refresh_token) as client:
        assert await _ask(client)
    async with openai_client(second, account.refresh_token) as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            await _ask(client)
    assert "another holder of the same login" in caught.value.message
    assert account.refresh_token not in caught.value.message

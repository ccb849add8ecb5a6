"""Kimi credentials as the seed takes them: refresh tokens (exchanged and cached) or access JWTs, comma-joined."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI, AuthenticationError

from kimi_free_api.emulator import Account, Emulator, Fault
from tests.e2e.support import Gateway, GatewayFactory, openai_client


async def _ask(client: AsyncOpenAI, text: str = "hi") -> str:
    reply = await client.chat.completions.create(model="kimi", messages=[{"role": "user", "content": text}])
    return reply.choices[0].message.content or ""


async def test_refresh_token_is_exchanged_once_and_cached(client: AsyncOpenAI, emulator: Emulator) -> None:
    for n in range(4):
        await _ask(client, f"turn {n}")
    assert emulator.state.refreshes == 1
    assert emulator.state.requests["chat"] == 4


async def test_concurrent_first_requests_share_one_refresh(gateway: Gateway, emulator: Emulator) -> None:
    emulator.configure(enforce_single_stream=False)
    account = emulator.create_account("bob")
    async with openai_client(gateway, account.refresh_token) as client:
        await asyncio.gather(*(_ask(client, f"c{n}") for n in range(10)))
    assert emulator.state.refreshes == 1


async def test_access_token_is_used_directly(gateway: Gateway, emulator: Emulator, account: Account) -> None:
    async with openai_client(gateway, account.access_token) as client:
        assert await _ask(client)
    assert emulator.state.refreshes == 0


async def test_access_token_is_refreshed_before_it_expires(gateway_factory: GatewayFactory, emulator: Emulator) -> None:
    emulator.configure(access_token_ttl_s=3)
    account = emulator.create_account("short-lived")
    gateway = await gateway_factory(token_refresh_margin_s=2.0)
    async with openai_client(gateway, account.refresh_token) as client:
        await _ask(client)
        await asyncio.sleep(1.2)  # now within the margin of the 3 s expiry
        await _ask(client)
    assert emulator.state.refreshes == 2


async def test_several_tokens_spread_requests_over_accounts(gateway: Gateway, emulator: Emulator) -> None:
    first, second = emulator.create_account("one"), emulator.create_account("two")
    async with openai_client(gateway, f"{first.refresh_token},{second.refresh_token}") as client:
        for n in range(24):
            await _ask(client, f"spread {n}")
    # Each account's refresh token is exchanged once: both were chosen.
    assert emulator.state.refreshes == 2


async def test_rejected_token_is_401(gateway: Gateway) -> None:
    async with openai_client(gateway, "not-a-kimi-token") as client:
        with pytest.raises(AuthenticationError) as caught:
            await _ask(client)
    assert "not-a-kimi-token" not in str(caught.value)
    assert caught.value.code == "invalid_kimi_token"


async def test_missing_token_is_401(http: aiohttp.ClientSession) -> None:
    body = {"model": "kimi", "messages": [{"role": "user", "content": "x"}]}
    async with http.post("/v1/chat/completions", json=body) as response:
        assert response.status == 401
        error = (await response.json())["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert "`Authorization: Bearer` header" in error["message"]  # readable: not mistaken for a secret


async def test_token_check(http: aiohttp.ClientSession, account: Account) -> None:
    for token, live in ((account.refresh_token, True), (account.access_token, True), ("garbage-token", False)):
        async with http.post("/token/check", json={"token": token}) as response:
            assert response.status == 200
            assert await response.json() == {"live": live}
    async with http.post("/token/check", json={"token": 42}) as response:
        assert response.status == 400
        assert (await response.json())["error"]["param"] == "token"


async def test_tokens_never_reach_the_logs(
    gateway: Gateway, emulator: Emulator, account: Account, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    emulator.add_fault(Fault(kind="unavailable", times=5))  # every failover attempt fails too
    async with openai_client(gateway, f"{account.refresh_token},{account.access_token}") as client:
        with pytest.raises(openai.APIStatusError):
            await _ask(client)
    async with openai_client(gateway, "bogus-refresh-token-value") as client:
        with pytest.raises(AuthenticationError):
            await _ask(client)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert logged, "requests were logged"
    for secret in (account.refresh_token, account.access_token, "bogus-refresh-token-value"):
        assert secret not in logged


async def test_rotated_refresh_tokens_are_kept_across_restarts(
    gateway_factory: GatewayFactory, emulator: Emulator, tmp_path: Any
) -> None:
    emulator.configure(rotate_refresh_tokens=True, access_token_ttl_s=1)
    account = emulator.create_account("rotating")
    data_dir = str(tmp_path / "rotating")
    first = await gateway_factory(data_dir=data_dir, token_refresh_margin_s=0.5)
    async with openai_client(first, account.refresh_token) as client:
        await _ask(client, "one")
        await asyncio.sleep(0.6)  # the access token is now within the refresh margin
        await _ask(client, "two")  # refreshed with the rotated token: the original one is revoked
    await first.stop()
    await asyncio.sleep(0.6)
    second = await gateway_factory(data_dir=data_dir, token_refresh_margin_s=0.5)
    async with openai_client(second, account.refresh_token) as client:
        assert await _ask(client, "three")  # the client still sends the original; the store knows the newest
    # Every exchange after the first used a rotated token: with the original one Kimi (the emulator) answers 401.
    assert emulator.state.refreshes >= 3


async def test_a_restart_reuses_the_cached_access_token(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account, tmp_path: Any
) -> None:
    data_dir = str(tmp_path / "cached")
    first = await gateway_factory(data_dir=data_dir)
    async with openai_client(first, account.refresh_token) as client:
        await _ask(client)
    await first.stop()
    second = await gateway_factory(data_dir=data_dir)
    async with openai_client(second, account.refresh_token) as client:
        await _ask(client)
    assert emulator.state.refreshes == 1

"""Per-key limits and the request log shared by two gateway instances through a real redis-server: a key's
requests per minute and concurrent streams are counted across both, and either shows the other's requests. Ended
console sessions are kept there too (their instances' tests: test_admin_sessions.py)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import openai
import pytest

from kimi_free_api.core.access.callers import KeyLimits
from kimi_free_api.emulator import Emulator
from kimi_free_api.emulator.answers import expected_answer
from kimi_free_api.state.redis import RedisState
from kimi_free_api.state.redis_access import RedisKeyLimiter
from tests.e2e.admin_client import ADMIN_KEY, admin_session
from tests.e2e.support import Gateway, GatewayFactory, eventually, openai_client


async def _pair(gateway_factory: GatewayFactory, emulator: Emulator, redis_url: str, tmp_path: Path) -> list[Gateway]:
    accounts = [emulator.create_account(f"acct{n}") for n in range(2)]
    shared: dict[str, Any] = {
        "admin_key": ADMIN_KEY,
        "redis_url": redis_url,
        "kimi_tokens": ",".join(a.refresh_token for a in accounts),
        "data_dir": str(tmp_path / "shared-data"),  # one SQLite file: a key made on one instance is known to both
        "max_in_flight_per_account": 2,
    }
    return [await gateway_factory(**shared), await gateway_factory(**shared)]


async def _ask(gateway: Gateway, key: str, text: str = "hi", stream: bool = False) -> str:
    async with openai_client(gateway, key) as client:
        messages: Any = [{"role": "user", "content": text}]
        if not stream:
            reply = await client.chat.completions.create(model="kimi", messages=messages)
            return reply.choices[0].message.content or ""
        chunks = await client.chat.completions.create(model="kimi", messages=messages, stream=True)
        return "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])


async def test_requests_per_minute_count_on_every_instance(
    redis_url: str, gateway_factory: GatewayFactory, emulator: Emulator, tmp_path: Path
) -> None:
    one, other = await _pair(gateway_factory, emulator, redis_url, tmp_path)
    async with admin_session(one.url) as admin:
        key = (await admin.ok("POST", "/keys", {"name": "shared", "rpm": 3}))["key"]
    for gateway in (one, other, one):
        await _ask(gateway, key)
    with pytest.raises(openai.RateLimitError) as limited:
        await _ask(other, key)
    assert 1 <= int(limited.value.response.headers["Retry-After"]) <= 60
    # Each instance writes its entries within a second; the other's show up then.
    async with admin_session(other.url) as admin:
        for _ in range(50):
            log = (await admin.ok("GET", "/log?key=shared"))["data"]
            if len(log) == 4:
                break
            await asyncio.sleep(0.1)
    assert sorted(entry["status"] for entry in log) == [200, 200, 200, 429]


async def test_concurrent_streams_count_on_every_instance(
    redis_url: str, gateway_factory: GatewayFactory, emulator: Emulator, tmp_path: Path
) -> None:
    one, other = await _pair(gateway_factory, emulator, redis_url, tmp_path)
    emulator.configure(event_delay_ms=40)
    async with admin_session(one.url) as admin:
        key = (await admin.ok("POST", "/keys", {"name": "one-at-a-time", "concurrent": 1}))["key"]
    first = asyncio.create_task(_ask(one, key, "long", stream=True))
    await eventually(lambda: sum(emulator.state.active_streams.values()) == 1)
    with pytest.raises(openai.RateLimitError) as busy:
        await _ask(other, key, stream=True)
    assert busy.value.response.json()["error"]["code"] == "key_concurrency_limit_exceeded"
    assert await first == expected_answer("long", emulator.config)
    assert await _ask(other, key) == expected_answer("hi", emulator.config)


async def test_a_slot_left_by_a_crashed_instance_expires(redis_url: str) -> None:
    state = RedisState.from_url(redis_url)
    try:
        limiter = RedisKeyLimiter(state)
        limits = KeyLimits(concurrent=1)
        assert await limiter.hold("k1", limits.concurrent, "slot-a")
        assert not await limiter.hold("k1", limits.concurrent, "slot-b")
        # A crashed instance stops renewing: once its lease is past, the slot is free again.
        await state.client.zadd("kfa:streams:k1", {"slot-a": 1})
        assert await limiter.hold("k1", limits.concurrent, "slot-b")
        await limiter.release("k1", "slot-b")
        assert await limiter.hold("k1", limits.concurrent, "slot-c")
    finally:
        await state.close()


async def test_an_ended_session_is_kept_until_it_would_expire_and_the_everywhere_mark_only_moves_on(
    redis_url: str,
) -> None:
    state = RedisState.from_url(redis_url)
    try:
        await state.end_session("nonce", time.time() + 60)
        assert 0 < await state.client.pttl("kfa:admin:ended:nonce") <= 60_000
        assert await state.session_ended("nonce", 0) and not await state.session_ended("other", 0)
        await state.end_sessions_before(2_000)
        await state.end_sessions_before(1_000)
        assert await state.session_ended("other", 1_999) and not await state.session_ended("other", 2_000)
    finally:
        await state.close()


async def test_an_account_added_on_one_instance_joins_the_others_pool(
    redis_url: str, gateway_factory: GatewayFactory, emulator: Emulator, tmp_path: Path
) -> None:
    shared: dict[str, Any] = {
        "admin_key": ADMIN_KEY,
        "redis_url": redis_url,
        "data_dir": str(tmp_path / "shared-data"),
        "account_sync_interval_s": 0.1,
    }
    one, other = await gateway_factory(**shared), await gateway_factory(**shared)
    dora = emulator.create_account("dora")
    async with admin_session(one.url) as admin:
        added = await admin.ok("POST", "/accounts", {"token": dora.refresh_token, "label": "dora"})
        key = (await admin.ok("POST", "/keys", {"name": "k"}))["key"]
    async with admin_session(other.url) as admin:
        for _ in range(50):
            listed = (await admin.ok("GET", "/accounts"))["data"]
            if listed[0]["health"] != "joining":
                break
            await asyncio.sleep(0.05)
        assert [(a["id"], a["label"], a["health"]) for a in listed] == [(added["id"], "dora", "healthy")]
        assert await _ask(other, key) == expected_answer("hi", emulator.config)
        await admin.ok("PATCH", f"/accounts/{added['id']}", {"disabled": True})
    async with admin_session(one.url) as admin:
        for _ in range(50):
            if (await admin.ok("GET", "/accounts"))["data"][0]["health"] == "disabled":
                break
            await asyncio.sleep(0.05)
        assert (await admin.ok("GET", "/accounts"))["data"][0]["health"] == "disabled"

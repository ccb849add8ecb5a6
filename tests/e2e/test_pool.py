"""The account pool: server accounts behind API keys, scheduling, cooldowns, failover, waiting, recovery."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import openai
import orjson
import pytest
from openai import AsyncOpenAI

from kimi_free_api.emulator import Account, Emulator, Fault
from kimi_free_api.emulator.answers import expected_answer
from kimi_free_api.pool.accounts import account_id
from tests.e2e.support import Gateway, GatewayFactory, eventually, openai_client

ADMIN = "admin-key-for-tests-0123"
API_KEY = "gateway-key-for-tests-0123"


async def _ask(client: AsyncOpenAI, text: str = "hi", stream: bool = False) -> str:
    messages: Any = [{"role": "user", "content": text}]
    if not stream:
        reply = await client.chat.completions.create(model="kimi", messages=messages)
        return reply.choices[0].message.content or ""
    chunks = await client.chat.completions.create(model="kimi", messages=messages, stream=True)
    return "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])


async def _admin(gateway: Gateway) -> dict[str, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{gateway.url}/admin/accounts", headers={"Authorization": f"Bearer {ADMIN}"}) as response,
    ):
        assert response.status == 200
        body = await response.json()
    return {entry["id"]: entry for entry in body["data"]}


async def _server(gateway_factory: GatewayFactory, accounts: list[Account], **overrides: Any) -> Gateway:
    return await gateway_factory(
        kimi_tokens=",".join(a.refresh_token for a in accounts), api_keys=API_KEY, admin_key=ADMIN, **overrides
    )


def _owners(emulator: Emulator) -> list[str]:
    return [chat.owner for chat in emulator.state.chats.values()]


async def test_server_mode_answers_with_its_own_accounts(gateway_factory: GatewayFactory, emulator: Emulator) -> None:
    accounts = [emulator.create_account(f"server{n}") for n in range(3)]
    gateway = await _server(gateway_factory, accounts)
    async with openai_client(gateway, API_KEY) as client:
        for n in range(6):
            assert await _ask(client, f"q{n}") == expected_answer(f"q{n}", emulator.config)
    # Round-robin among equally idle accounts: each served two of the six.
    admin = await _admin(gateway)
    assert sorted(entry["successes"] for entry in admin.values()) == [2, 2, 2]
    assert all(entry["kind"] == "server" and "…" in entry["token"] for entry in admin.values())
    for account in accounts:
        assert account.refresh_token not in str(admin)


async def test_keys_and_tokens_are_never_confused(
    gateway_factory: GatewayFactory, emulator: Emulator, tmp_path: Any
) -> None:
    server = emulator.create_account("server")
    client_account = emulator.create_account("client")
    gateway = await _server(gateway_factory, [server])
    for bearer, code in (
        ("kfa-not-a-real-key-000000000000", "invalid_api_key"),  # shaped like a key: never sent to Kimi
        (client_account.refresh_token, "invalid_api_key"),  # client tokens are refused in server mode
        (f"{API_KEY},{client_account.refresh_token}", "invalid_api_key"),
    ):
        async with openai_client(gateway, bearer) as client:
            with pytest.raises(openai.AuthenticationError) as caught:
                await _ask(client)
            assert caught.value.code == code
    assert emulator.state.requests["chat"] == 0
    await eventually(lambda: emulator.state.refreshes == 1)  # the server account's own warm-up, nothing else
    assert emulator.state.requests["refresh"] == 1


async def test_created_keys_work_and_revoked_keys_stop(
    gateway_factory: GatewayFactory, emulator: Emulator, tmp_path: Any
) -> None:
    from kimi_free_api.state.sqlite import SqliteStore

    server = emulator.create_account("server")
    data_dir = str(tmp_path / "store")
    gateway = await _server(gateway_factory, [server], data_dir=data_dir)
    store = SqliteStore.in_dir(data_dir)
    stored, key = store.create_key("ann")
    async with openai_client(gateway, key) as client:
        assert await _ask(client)
        store.revoke_key(stored.id)
        await asyncio.sleep(5.2)  # the gateway trusts the store's answer for 5 s
        with pytest.raises(openai.AuthenticationError):
            await _ask(client)
    store.close()


async def test_one_stream_per_account_under_load(gateway_factory: GatewayFactory, emulator: Emulator) -> None:
    """200 concurrent streams over 5 accounts capped at 1: all complete, none overlap on an account."""
    emulator.configure(event_count=10, event_delay_ms=2)
    accounts = [emulator.create_account(f"load{n}") for n in range(5)]
    gateway = await _server(gateway_factory, accounts, capacity_wait_s=120.0)
    async with openai_client(gateway, API_KEY) as client:
        answers = await asyncio.gather(*(_ask(client, f"load {n}", stream=True) for n in range(200)))
    assert answers == [expected_answer(f"load {n}", emulator.config) for n in range(200)]
    assert set(emulator.state.max_concurrent_streams.values()) == {1}
    assert len(emulator.state.max_concurrent_streams) == 5
    await eventually(lambda: emulator.state.live_chats == 0)


async def test_failover_to_another_account_before_the_first_byte(
    gateway_factory: GatewayFactory, emulator: Emulator
) -> None:
    first, second = emulator.create_account("first"), emulator.create_account("second")
    gateway = await _server(gateway_factory, [first, second], min_start_interval_s=0.0)
    emulator.add_fault(Fault(kind="unavailable", user_id=first.user_id))
    emulator.add_fault(Fault(kind="unavailable", user_id=second.user_id))
    async with openai_client(gateway, API_KEY) as client:
        # Attempt 1 hits one account's fault, attempt 2 the other's, attempt 3 succeeds.
        assert await _ask(client, "retry me") == expected_answer("retry me", emulator.config)
    assert emulator.state.requests["chat"] == 3
    await eventually(lambda: emulator.state.live_chats == 0)


async def test_rate_limited_account_cools_down_and_traffic_moves(
    gateway_factory: GatewayFactory, emulator: Emulator
) -> None:
    limited, other = emulator.create_account("limited"), emulator.create_account("other")
    gateway = await _server(gateway_factory, [limited, other])
    emulator.add_fault(Fault(kind="rate_limited", retry_after=30, user_id=limited.user_id, times=10))
    async with openai_client(gateway, API_KEY) as client:
        for n in range(4):
            assert await _ask(client, f"n{n}")
    admin = await _admin(gateway)
    cooled = admin[account_id(limited.refresh_token)]
    assert cooled["health"] == "cooling"
    assert 25 <= cooled["cooldown_remaining_s"] <= 30
    assert "RateLimited" in cooled["last_error"]
    assert cooled["failures"] == 1  # once cooling, it is not tried again
    assert admin[account_id(other.refresh_token)]["successes"] == 4


async def test_rejected_account_is_dead_then_probed_back(gateway_factory: GatewayFactory, emulator: Emulator) -> None:
    flaky, steady = emulator.create_account("flaky"), emulator.create_account("steady")
    gateway = await _server(gateway_factory, [flaky, steady], probe_interval_s=0.5)
    # Two 401s: the first makes the gateway refresh the token and retry; the second is final for this attempt.
    emulator.add_fault(Fault(kind="unauthenticated", user_id=flaky.user_id, times=2))
    async with openai_client(gateway, API_KEY) as client:
        for n in range(2):
            assert await _ask(client, f"n{n}")
    flaky_id = account_id(flaky.refresh_token)
    admin = await _admin(gateway)
    # Round-robin gave the first request to the first account: rejected, so the second answered it.
    assert admin[flaky_id]["failures"] == 1
    assert "Unauthorized" in admin[flaky_id]["last_error"]
    assert admin[account_id(steady.refresh_token)]["successes"] == 2
    # The probe finds the token working again (its refresh succeeds) and revives it.
    deadline = time.monotonic() + 5
    while (await _admin(gateway))[flaky_id]["health"] != "healthy":
        assert time.monotonic() < deadline, "the dead account was never probed back"
        await asyncio.sleep(0.1)


async def test_waiting_for_capacity_then_429(gateway_factory: GatewayFactory, emulator: Emulator) -> None:
    emulator.configure(event_count=30, event_delay_ms=50)  # a 1.5 s answer holds the only account
    # Two gateways hold the one account here; with rotating refresh tokens only one holder may (and that is
    # tested in test_tokens.py).
    emulator.configure(rotate_refresh_tokens=False)
    only = emulator.create_account("only")
    gateway = await _server(gateway_factory, [only], capacity_wait_s=0.4)
    async with openai_client(gateway, API_KEY) as client:
        busy = asyncio.create_task(_ask(client, "long", stream=True))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        with pytest.raises(openai.RateLimitError) as caught:
            await _ask(client, "waits")
        assert 0.35 < time.monotonic() - started < 1.5
        assert caught.value.response.headers.get("Retry-After")
        assert await busy
    patient = await _server(gateway_factory, [only], capacity_wait_s=10.0)
    async with openai_client(patient, API_KEY) as client:
        results = await asyncio.gather(_ask(client, "first", stream=True), _ask(client, "second"))
    assert list(results) == [expected_answer("first", emulator.config), expected_answer("second", emulator.config)]


async def test_accounts_resting_past_the_wait_are_refused_at_once(
    gateway_factory: GatewayFactory, emulator: Emulator
) -> None:
    only = emulator.create_account("only")
    gateway = await _server(gateway_factory, [only], capacity_wait_s=30.0)
    emulator.add_fault(Fault(kind="rate_limited", retry_after=60))
    async with openai_client(gateway, API_KEY) as client:
        with pytest.raises(openai.RateLimitError):
            await _ask(client, "refused by Kimi")
        # The account rests 60 s, longer than a request waits: the answer is the same 429 now, not in 30 s.
        started = time.monotonic()
        with pytest.raises(openai.RateLimitError) as caught:
            await _ask(client, "would wait in vain")
        assert time.monotonic() - started < 2.0
        assert 55 <= float(caught.value.response.headers["Retry-After"]) <= 60


async def test_keepalive_comments_while_waiting_and_silent(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account
) -> None:
    emulator.configure(first_event_delay_ms=1500)
    gateway = await gateway_factory(keepalive_s=0.3)
    body = {"model": "kimi", "messages": [{"role": "user", "content": "think long"}], "stream": True}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{gateway.url}/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {account.refresh_token}"},
        ) as response,
    ):
        raw = await response.read()
    events = [e for e in raw.split(b"\n\n") if e]
    assert events[0] == b": keep-alive"
    assert sum(1 for e in events if e == b": keep-alive") >= 3
    assert events[-1] == b"data: [DONE]"
    # The real client ignores the comments.
    async with openai_client(gateway, account.refresh_token) as client:
        assert await _ask(client, "think long", stream=True) == expected_answer("think long", emulator.config)


FAULTS = [
    ("unauthenticated", dict(times=2), 401, "dead"),
    ("rate_limited", dict(retry_after=20), 429, "cooling"),
    ("quota", {}, 429, "cooling"),
    ("busy", {}, 429, "cooling"),
    ("internal", {}, 502, "healthy"),
    ("unavailable", {}, 503, "healthy"),
    ("stream_error", dict(after_events=3), 200, "healthy"),
    ("disconnect", dict(after_events=3), 200, "healthy"),
    ("stall", dict(after_events=3), 200, "healthy"),
]


@pytest.mark.parametrize(("kind", "options", "status", "health"), FAULTS, ids=[f[0] for f in FAULTS])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_fault_matrix(
    gateway_factory: GatewayFactory,
    emulator: Emulator,
    kind: str,
    options: dict[str, Any],
    status: int,
    health: str,
    stream: bool,
) -> None:
    """What the client sees, that no chat leaks, and the account's state, for every fault."""
    only = emulator.create_account("only")
    gateway = await _server(gateway_factory, [only], stream_idle_timeout_s=0.6, failover_attempts=1)
    emulator.add_fault(Fault(kind=kind, user_id=only.user_id, **options))
    body = {"model": "kimi", "messages": [{"role": "user", "content": "fault"}], "stream": stream}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{gateway.url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {API_KEY}"}
        ) as response,
    ):
        raw = await response.read()
        got_status = response.status
    mid_stream = kind in ("stream_error", "disconnect", "stall")
    if mid_stream and stream:
        assert got_status == 200
        assert b'data: {"error":' in raw and raw.endswith(b"data: [DONE]\n\n")
    elif mid_stream:
        assert got_status in (502, 504)  # never a truncated answer passed off as complete
    else:
        assert got_status == status
        assert b'"error"' in raw
    await eventually(lambda: emulator.state.live_chats == 0)
    entry = (await _admin(gateway))[account_id(only.refresh_token)]
    assert entry["health"] == health
    assert entry["in_flight"] == 0
    if not mid_stream or not stream:
        assert entry["last_error"]


async def test_starts_on_one_account_are_spaced(gateway_factory: GatewayFactory, emulator: Emulator) -> None:
    only = emulator.create_account("only")
    gateway = await _server(gateway_factory, [only], min_start_interval_s=0.4)
    async with openai_client(gateway, API_KEY) as client:
        started = time.monotonic()
        await asyncio.gather(*(_ask(client, f"s{n}") for n in range(3)))
    assert time.monotonic() - started >= 0.8
    assert emulator.state.max_concurrent_streams[only.user_id] == 1


async def test_access_tokens_are_refreshed_ahead_of_expiry(gateway_factory: GatewayFactory, emulator: Emulator) -> None:
    emulator.configure(access_token_ttl_s=2)
    only = emulator.create_account("only")
    gateway = await _server(gateway_factory, [only], probe_interval_s=0.3, token_refresh_margin_s=0.1)
    async with openai_client(gateway, API_KEY) as client:
        await _ask(client)
    before = emulator.state.refreshes
    # No requests now: the probe alone keeps the account's access token fresh.
    await eventually(lambda: emulator.state.refreshes >= before + 2, timeout_s=8)


async def test_a_stream_waiting_for_an_account_gets_keepalives(
    gateway_factory: GatewayFactory, emulator: Emulator
) -> None:
    emulator.configure(event_count=20, event_delay_ms=50)
    only = emulator.create_account("only")
    gateway = await _server(gateway_factory, [only], keepalive_s=0.2)
    body = {"model": "kimi", "messages": [{"role": "user", "content": "second"}], "stream": True}
    async with openai_client(gateway, API_KEY) as client, aiohttp.ClientSession() as session:
        first = asyncio.create_task(_ask(client, "first", stream=True))
        await asyncio.sleep(0.1)
        async with session.post(
            f"{gateway.url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {API_KEY}"}
        ) as response:
            raw = await response.read()
        assert await first == expected_answer("first", emulator.config)
    events = [e for e in raw.split(b"\n\n") if e]
    assert events[0] == b": keep-alive"
    assert events[-1] == b"data: [DONE]"
    text = "".join(
        orjson.loads(e[6:])["choices"][0]["delta"].get("content") or "" for e in events if e.startswith(b"data: {")
    )
    assert text == expected_answer("second", emulator.config)


async def test_account_health_survives_a_restart(
    gateway_factory: GatewayFactory, emulator: Emulator, tmp_path: Any
) -> None:
    rejected, limited = emulator.create_account("rejected"), emulator.create_account("limited")
    data_dir = str(tmp_path / "health")
    first = await _server(gateway_factory, [rejected, limited], data_dir=data_dir, failover_attempts=1)
    emulator.add_fault(Fault(kind="unauthenticated", user_id=rejected.user_id, times=2))
    emulator.add_fault(Fault(kind="rate_limited", retry_after=120, user_id=limited.user_id))
    async with openai_client(first, API_KEY) as client:
        for _ in range(2):
            with pytest.raises(openai.APIStatusError):
                await _ask(client)
    await first.stop()
    second = await _server(gateway_factory, [rejected, limited], data_dir=data_dir)
    admin = await _admin(second)
    assert admin[account_id(rejected.refresh_token)]["health"] == "dead"
    cooling = admin[account_id(limited.refresh_token)]
    assert cooling["health"] == "cooling" and 100 < cooling["cooldown_remaining_s"] <= 120
    assert emulator.state.requests["chat"] == 3  # nothing was retried on the restarted gateway

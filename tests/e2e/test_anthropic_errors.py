"""Anthropic error shapes and statuses, and both ways of authenticating (`x-api-key`, `Authorization: Bearer`) in
seed mode and server mode, with the real `anthropic` client."""

from __future__ import annotations

from typing import Any

import aiohttp
import anthropic
import orjson
import pytest

from kimi_free_api.emulator import Account, Emulator, Fault
from tests.e2e.anthropic_support import anthropic_client, parse_sse, post_messages
from tests.e2e.support import Gateway, GatewayFactory

API_KEY = "gateway-key-for-anthropic-tests"
HELLO: Any = [{"role": "user", "content": "Hello"}]


def assert_shape(body: Any, kind: str) -> str:
    assert body["type"] == "error" and set(body) == {"type", "error", "request_id"}
    assert set(body["error"]) == {"type", "message"} and body["error"]["type"] == kind
    message: str = body["error"]["message"]
    return message


async def test_invalid_request(gateway: Gateway, account: Account, emulator: Emulator) -> None:
    async with anthropic_client(gateway, api_key=account.refresh_token) as claude:
        with pytest.raises(anthropic.BadRequestError) as caught:
            await claude.messages.create(model="kimi", max_tokens=0, messages=HELLO)
    body: Any = caught.value.body
    assert caught.value.status_code == 400 and caught.value.request_id == body["request_id"]
    assert "max_tokens" in assert_shape(caught.value.body, "invalid_request_error")
    for body in (
        {"model": "kimi", "messages": HELLO},  # max_tokens is required
        {"model": "kimi", "max_tokens": 5, "messages": []},
        {"model": "kimi", "max_tokens": 5, "messages": HELLO, "tool_choice": {"type": "sometimes"}},
        {"model": "kimi", "max_tokens": 5, "messages": HELLO, "tools": [{"name": "no schema"}]},
        {"model": "kimi", "max_tokens": 5, "messages": HELLO, "thinking": {"type": "maybe"}},
        {"model": "kimi", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "audio"}]}]},
    ):
        status, raw, _ = await post_messages(gateway, body, {"x-api-key": account.refresh_token})
        assert status == 400, body
        assert_shape(
            anthropic.types.shared.ErrorResponse.model_validate_json(raw).model_dump(), "invalid_request_error"
        )
    status, raw, _ = await post_messages(gateway, {}, {"x-api-key": account.refresh_token}, "/v1/messages/count_tokens")
    assert status == 400
    assert emulator.state.requests.get("chat", 0) == 0


async def test_not_json(gateway: Gateway, account: Account) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{gateway.url}/v1/messages", data=b"{oops", headers={"x-api-key": account.refresh_token}) as reply,
    ):
        assert reply.status == 400
        assert "not valid JSON" in assert_shape(await reply.json(), "invalid_request_error")


async def test_unknown_model_is_404(gateway: Gateway, account: Account) -> None:
    async with anthropic_client(gateway, api_key=account.refresh_token) as claude:
        with pytest.raises(anthropic.NotFoundError) as caught:
            await claude.messages.create(model="llama-3-70b", max_tokens=10, messages=HELLO)
        assert "llama-3-70b" in assert_shape(caught.value.body, "not_found_error")
        with pytest.raises(anthropic.NotFoundError):
            await claude.messages.count_tokens(model="llama-3-70b", messages=HELLO)
        with pytest.raises(anthropic.NotFoundError):
            await claude.models.retrieve("llama-3-70b")


async def test_overload_is_529(gateway_factory: GatewayFactory, account: Account, emulator: Emulator) -> None:
    gateway = await gateway_factory(failover_attempts=1)
    emulator.add_fault(Fault(kind="unavailable", times=2))
    async with anthropic_client(gateway, api_key=account.refresh_token) as claude:
        with pytest.raises(anthropic.OverloadedError) as caught:
            await claude.messages.create(model="kimi", max_tokens=10, messages=HELLO)
        assert caught.value.status_code == 529
        assert_shape(caught.value.body, "overloaded_error")
        with pytest.raises(anthropic.OverloadedError):  # a stream that fails before its first event: a plain 529 too
            async with claude.messages.stream(model="kimi", max_tokens=10, messages=HELLO) as stream:
                await stream.get_final_message()


async def test_rate_limit_is_429(gateway_factory: GatewayFactory, account: Account, emulator: Emulator) -> None:
    gateway = await gateway_factory(failover_attempts=1)
    emulator.add_fault(Fault(kind="rate_limited", retry_after=7))
    async with anthropic_client(gateway, api_key=account.refresh_token) as claude:
        with pytest.raises(anthropic.RateLimitError) as caught:
            await claude.messages.create(model="kimi", max_tokens=10, messages=HELLO)
    assert caught.value.response.headers["Retry-After"] == "7"
    assert_shape(caught.value.body, "rate_limit_error")


async def test_failure_mid_stream_is_an_error_event(gateway: Gateway, account: Account, emulator: Emulator) -> None:
    emulator.add_fault(Fault(kind="stream_error", after_events=3))
    body = {"model": "kimi", "max_tokens": 100, "stream": True, "messages": HELLO}
    status, raw, _ = await post_messages(gateway, body, {"x-api-key": account.refresh_token})
    assert status == 200
    events = parse_sse(raw)
    assert events[0][0] == "message_start"
    name, error = events[-1]
    assert name == "error"
    assert_shape(error, "api_error")
    assert "message_stop" not in [name for name, _ in events]


async def test_seed_mode_takes_x_api_key_and_bearer(gateway: Gateway, account: Account) -> None:
    for client in (
        anthropic_client(gateway, api_key=account.refresh_token),
        anthropic_client(gateway, auth_token=account.refresh_token),
    ):
        async with client as claude:
            message = await claude.messages.create(model="kimi", max_tokens=32, messages=HELLO)
            assert message.stop_reason == "end_turn"
    async with anthropic_client(gateway, api_key="not-a-kimi-token") as claude:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            await claude.messages.create(model="kimi", max_tokens=32, messages=HELLO)
    assert_shape(caught.value.body, "authentication_error")
    status, raw, _ = await post_messages(gateway, {"model": "kimi", "max_tokens": 5, "messages": HELLO}, {})
    assert status == 401 and b"authentication_error" in raw


async def test_server_mode_takes_x_api_key_and_bearer(
    gateway_factory: GatewayFactory, account: Account, emulator: Emulator
) -> None:
    gateway = await gateway_factory(kimi_tokens=account.refresh_token, api_keys=API_KEY)
    for client in (anthropic_client(gateway, api_key=API_KEY), anthropic_client(gateway, auth_token=API_KEY)):
        async with client as claude:
            message = await claude.messages.create(model="kimi", max_tokens=32, messages=HELLO)
            assert message.stop_reason == "end_turn"
            counted = await claude.messages.count_tokens(model="kimi", messages=HELLO)
            assert counted.input_tokens > 0
    for client in (
        anthropic_client(gateway, api_key="kfa-wrong"),
        anthropic_client(gateway, api_key=account.refresh_token),
    ):
        async with client as claude:
            with pytest.raises(anthropic.AuthenticationError):
                await claude.messages.create(model="kimi", max_tokens=32, messages=HELLO)
    assert emulator.state.requests["chat"] == 2


async def test_too_large_is_413(gateway_factory: GatewayFactory, account: Account) -> None:
    gateway = await gateway_factory(max_request_bytes=2048)
    body = {"model": "kimi", "max_tokens": 5, "messages": [{"role": "user", "content": "x" * 4096}]}
    status, raw, _ = await post_messages(gateway, body, {"x-api-key": account.refresh_token})
    assert status == 413
    assert_shape(orjson.loads(raw), "request_too_large")

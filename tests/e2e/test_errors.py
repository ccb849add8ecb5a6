"""Every failure is an OpenAI error object with the right status; after streaming began, an error event."""

from __future__ import annotations

from typing import Any

import aiohttp
import openai
import orjson
import pytest
from openai import AsyncOpenAI

from kimi_free_api.emulator import Account, Emulator, Fault
from tests.e2e.support import GatewayFactory, eventually, openai_client

CHAT = "/v1/chat/completions"


async def _post(http: aiohttp.ClientSession, token: str, body: Any, raw: bool = False) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"}
    kwargs: dict[str, Any] = {"data": body} if raw else {"json": body}
    async with http.post(CHAT, headers=headers, **kwargs) as response:
        payload = await response.json(content_type=None)
        return response.status, payload


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"", None),
        (b"[1, 2]", None),
        (b'{"model": "kimi"}', "messages"),
        (b'{"messages": []}', "messages"),
        (b'{"messages": "hi"}', "messages"),
        (b'{"messages": [{"role": "wizard", "content": "x"}]}', "messages[0].role"),
        (b'{"messages": [{"role": "user", "content": 5}]}', "messages[0].content"),
        (b'{"messages": [{"role": "user", "content": null}]}', "messages[0].content"),
        (
            b'{"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}',
            "messages[0].content[0]",
        ),
        (b'{"messages": [{"role": "user", "content": "x"}], "stream": "yes"}', "stream"),
        (b'{"messages": [{"role": "user", "content": "x"}], "model": 3}', "model"),
        (b'{"messages": [{"role": "user", "content": "x"}], "n": 3}', "n"),
    ],
)
async def test_bad_requests_are_400_openai_errors(
    http: aiohttp.ClientSession, account: Account, emulator: Emulator, body: bytes, param: str | None
) -> None:
    status, payload = await _post(http, account.refresh_token, body, raw=True)
    assert status == 400, payload
    assert set(payload) == {"error"}
    assert set(payload["error"]) == {"message", "type", "param", "code"}
    assert payload["error"]["type"] == "invalid_request_error"
    assert payload["error"]["param"] == param
    assert emulator.state.requests["chat"] == 0


async def test_body_without_json_content_type_is_accepted(http: aiohttp.ClientSession, account: Account) -> None:
    body = orjson.dumps({"messages": [{"role": "user", "content": "no content type"}]})
    status, payload = await _post(http, account.refresh_token, body, raw=True)
    assert status == 200, payload


@pytest.mark.parametrize(
    ("fault", "status", "code", "retry_after"),
    [
        (Fault(kind="unauthenticated"), 401, "invalid_kimi_token", None),
        (Fault(kind="rate_limited", retry_after=7), 429, "rate_limit_exceeded", "7"),
        (Fault(kind="quota"), 429, "insufficient_quota", None),
        (Fault(kind="busy"), 429, "account_busy", "1"),
        (Fault(kind="unavailable"), 503, "service_unavailable", None),
        (Fault(kind="internal"), 502, "upstream_error", None),
        (Fault(kind="bad_gateway"), 502, "upstream_error", None),
        (Fault(kind="stream_error"), 502, "upstream_error", None),
        (Fault(kind="content_filter"), 400, "content_filter", None),
        (Fault(kind="disconnect"), 502, "upstream_error", None),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_failures_before_content(
    gateway_factory: GatewayFactory,
    account: Account,
    emulator: Emulator,
    fault: Fault,
    status: int,
    code: str,
    retry_after: str | None,
    stream: bool,
) -> None:
    # One attempt: this is about how each failure is reported (failover has its own tests in test_pool.py).
    gateway = await gateway_factory(failover_attempts=1)
    emulator.add_fault(fault)
    body = {"messages": [{"role": "user", "content": "fail"}], "stream": stream}
    headers = {"Authorization": f"Bearer {account.access_token}"}
    async with (
        aiohttp.ClientSession(base_url=gateway.url) as http,
        http.post(CHAT, json=body, headers=headers) as response,
    ):
        payload = await response.json(content_type=None)
        assert response.status == status, payload
        assert response.headers.get("Retry-After") == retry_after
    assert payload["error"]["code"] == code
    assert account.access_token not in payload["error"]["message"]
    await eventually(lambda: emulator.state.live_chats == 0)


@pytest.mark.parametrize("kind", ["stream_error", "disconnect"])
@pytest.mark.parametrize("error_style", ["frame", "trailer"])
async def test_failure_after_streaming_began_is_an_error_event(
    client: AsyncOpenAI, emulator: Emulator, kind: str, error_style: str
) -> None:
    emulator.configure(error_style=error_style)
    emulator.add_fault(Fault(kind=kind, after_events=3))
    stream = await client.chat.completions.create(
        model="kimi", messages=[{"role": "user", "content": "break"}], stream=True
    )
    received: list[str] = []
    with pytest.raises(openai.APIError):
        async for chunk in stream:
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")
    assert "".join(received), "some content arrived before the failure"
    await eventually(lambda: emulator.state.live_chats == 0)


async def test_error_event_is_followed_by_done(
    http: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    emulator.add_fault(Fault(kind="stream_error", after_events=2))
    body = {"messages": [{"role": "user", "content": "x"}], "stream": True}
    async with http.post(CHAT, json=body, headers={"Authorization": f"Bearer {account.refresh_token}"}) as response:
        raw = await response.read()
    events = [e for e in raw.split(b"\n\n") if e]
    assert events[-1] == b"data: [DONE]"
    error = orjson.loads(events[-2][len(b"data: ") :])["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert not any(b'"finish_reason":"stop"' in e for e in events)


async def test_content_filter_mid_stream_finishes_with_content_filter(client: AsyncOpenAI, emulator: Emulator) -> None:
    emulator.add_fault(Fault(kind="content_filter", after_events=2))
    stream = await client.chat.completions.create(
        model="kimi", messages=[{"role": "user", "content": "x"}], stream=True
    )
    reasons = [c.choices[0].finish_reason async for c in stream if c.choices]
    assert reasons[-1] == "content_filter"


async def test_stall_is_a_timeout(gateway_factory: GatewayFactory, emulator: Emulator, account: Account) -> None:
    gateway = await gateway_factory(stream_idle_timeout_s=0.5, failover_attempts=1)
    emulator.add_fault(Fault(kind="stall"))
    async with openai_client(gateway, account.refresh_token) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(model="kimi", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 504
    emulator.add_fault(Fault(kind="stall", after_events=2))
    async with openai_client(gateway, account.refresh_token) as client:
        stream = await client.chat.completions.create(
            model="kimi", messages=[{"role": "user", "content": "x"}], stream=True
        )
        with pytest.raises(openai.APIError, match="sent nothing"):
            async for _ in stream:
                pass
    await eventually(lambda: emulator.state.live_chats == 0)
    assert emulator.state.requests["cancel"] >= 1  # the stalled generation was stopped, not just dropped


async def test_unreachable_upstream_is_502(gateway_factory: GatewayFactory, account: Account) -> None:
    gateway = await gateway_factory(kimi_base_url="http://127.0.0.1:9")  # discard port: nothing listens
    async with openai_client(gateway, account.access_token) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(model="kimi", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 502


async def test_unknown_route_and_method(http: aiohttp.ClientSession) -> None:
    async with http.get("/v1/nothing-here") as response:
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "not_found"
    async with http.get(CHAT) as response:
        assert response.status == 405
        assert (await response.json())["error"]["code"] == "method_not_allowed"

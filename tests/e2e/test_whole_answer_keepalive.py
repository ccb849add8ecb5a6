"""WHOLE_ANSWER_KEEPALIVE_S: a slow non-streamed answer gets its headers early and spaces during its silence, so
idle-limited proxies keep it; its JSON body follows, still valid for every parser. Read from the raw socket, with
the time each piece arrived, and through the real `openai` and `anthropic` clients."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from anthropic.types import Message, TextBlock
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from kimi_free_api.emulator import Account, Emulator, Fault
from kimi_free_api.emulator.answers import expected_answer
from tests.e2e.admin_client import ADMIN_KEY, admin_session
from tests.e2e.anthropic_support import VERSION, anthropic_client
from tests.e2e.rawhttp import request_bytes, timed_exchange
from tests.e2e.support import Gateway, GatewayFactory, eventually, openai_client

PATIENCE_S = 0.3


@dataclass
class TimedResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    # Seconds after the request was sent: the end of the head, each keep-alive space, the first byte of the body.
    head_at: float
    spaces_at: list[float]
    body_at: float

    def json(self) -> Any:
        return orjson.loads(self.body)


def _arrivals(pieces: list[tuple[float, bytes]]) -> tuple[bytes, list[float]]:
    """The bytes received, and for each byte the time its piece arrived."""
    raw = b"".join(chunk for _, chunk in pieces)
    times = [at for at, chunk in pieces for _ in chunk]
    return raw, times


def _timed(pieces: list[tuple[float, bytes]]) -> TimedResponse:
    raw, times = _arrivals(pieces)
    head_end = raw.index(b"\r\n\r\n") + 4
    lines = raw[:head_end].decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    status = int(lines[0].split(" ", 2)[1])
    if headers.get("transfer-encoding") != "chunked":
        return TimedResponse(status, headers, raw[head_end:], times[head_end - 1], [], times[head_end])
    body, spaces_at, body_at, at = bytearray(), [], 0.0, head_end
    while True:
        size_end = raw.index(b"\r\n", at)
        size = int(raw[at:size_end], 16)
        if size == 0:
            break
        data = raw[size_end + 2 : size_end + 2 + size]
        if data.strip() or body.strip():
            body_at = body_at or times[size_end + 2]
        else:
            spaces_at.append(times[size_end + 2])
        body += data
        at = size_end + 2 + size + 2
    return TimedResponse(status, headers, bytes(body), times[head_end - 1], spaces_at, body_at)


async def _post(gateway: Gateway, path: str, body: dict[str, Any], headers: dict[str, str]) -> TimedResponse:
    port = int(gateway.url.rsplit(":", 1)[1])
    sent = [(name.encode(), value.encode()) for name, value in {"Content-Type": "application/json", **headers}.items()]
    return _timed(await timed_exchange(port, request_bytes("POST", path, sent, orjson.dumps(body))))


def _bearer(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.refresh_token}"}


def _chat(prompt: str) -> dict[str, Any]:
    return {"model": "kimi", "messages": [{"role": "user", "content": prompt}]}


def _anthropic(prompt: str) -> dict[str, Any]:
    return {"model": "kimi", "max_tokens": 1024, "messages": [{"role": "user", "content": prompt}]}


def _slow(emulator: Emulator) -> None:
    """An answer of about 1.5 s: a long wait for Kimi's first words, then a few words at a time."""
    emulator.configure(first_event_delay_ms=900, event_delay_ms=100, event_count=6)


def _kept_alive(response: TimedResponse) -> None:
    """The headers went out after one interval of silence, spaces followed each further one, then the body."""
    assert response.status == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-cache" and response.headers["x-accel-buffering"] == "no"
    assert response.headers["transfer-encoding"] == "chunked" and "content-length" not in response.headers
    assert 0.25 <= response.head_at <= 0.8
    assert len(response.spaces_at) >= 3  # ~0.3, 0.6, 0.9, 1.2 s: the head's own space, then one per silence
    assert all(at < response.body_at for at in response.spaces_at)
    assert response.body_at >= 1.2
    assert response.body[: len(response.spaces_at)] == b" " * len(response.spaces_at)


async def test_a_slow_chat_completion_is_kept_alive_and_parses_as_the_openai_client_expects(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account
) -> None:
    gateway = await gateway_factory(whole_answer_keepalive_s=PATIENCE_S)
    _slow(emulator)
    response = await _post(gateway, "/v1/chat/completions", _chat("slow whole"), _bearer(account))
    _kept_alive(response)
    completion = ChatCompletion.model_validate(orjson.loads(response.body.lstrip()))
    assert completion.choices[0].message.content == expected_answer("slow whole", emulator.config)
    assert completion.choices[0].finish_reason == "stop"
    async with openai_client(gateway, account.refresh_token) as client:
        reply = await client.chat.completions.create(model="kimi", messages=[{"role": "user", "content": "again"}])
    assert reply.choices[0].message.content == expected_answer("again", emulator.config)
    await eventually(lambda: emulator.state.live_chats == 0)


async def test_a_slow_message_is_kept_alive_and_parses_as_the_anthropic_client_expects(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account
) -> None:
    gateway = await gateway_factory(whole_answer_keepalive_s=PATIENCE_S)
    _slow(emulator)
    response = await _post(gateway, "/v1/messages", _anthropic("slow message"), {**VERSION, **_bearer(account)})
    _kept_alive(response)
    assert response.headers["request-id"]  # the surface's own headers go out early too
    message = Message.model_validate(orjson.loads(response.body.lstrip()))
    assert isinstance(message.content[0], TextBlock)
    assert message.content[0].text == expected_answer("slow message", emulator.config)
    assert message.stop_reason == "end_turn"
    async with anthropic_client(gateway, auth_token=account.refresh_token) as client:
        reply = await client.messages.create(**_anthropic("again"))
    assert isinstance(reply.content[0], TextBlock)
    assert reply.content[0].text == expected_answer("again", emulator.config)


async def test_a_slow_response_is_kept_alive_and_parses_as_the_openai_client_expects(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account
) -> None:
    gateway = await gateway_factory(whole_answer_keepalive_s=PATIENCE_S)
    _slow(emulator)
    body = {"model": "kimi", "input": "slow response"}
    response = await _post(gateway, "/v1/responses", body, _bearer(account))
    _kept_alive(response)
    parsed = Response.model_validate(orjson.loads(response.body.lstrip()))
    assert parsed.status == "completed" and parsed.object == "response"
    assert parsed.output_text == expected_answer("slow response", emulator.config)
    async with openai_client(gateway, account.refresh_token) as client:
        reply = await client.responses.create(model="kimi", input="again")
    assert reply.output_text == expected_answer("again", emulator.config)


async def test_a_slow_tool_answer_is_kept_alive_through_the_guided_path(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account
) -> None:
    gateway = await gateway_factory(whole_answer_keepalive_s=PATIENCE_S)
    _slow(emulator)
    emulator.script(['<tool_call name="get_weather">{"city": "Paris"}</tool_call>'])
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    body = {**_chat("weather?"), "tools": [tool]}
    response = await _post(gateway, "/v1/chat/completions", body, _bearer(account))
    _kept_alive(response)
    completion = ChatCompletion.model_validate(orjson.loads(response.body.lstrip()))
    calls = completion.choices[0].message.tool_calls
    assert calls is not None and calls[0].function.name == "get_weather"  # type: ignore[union-attr]
    assert completion.choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", _chat("fast")),
        ("/v1/messages", _anthropic("fast")),
        ("/v1/responses", {"model": "kimi", "input": "fast"}),
    ],
)
async def test_a_fast_answer_is_unchanged_with_the_setting_on(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account, path: str, body: dict[str, Any]
) -> None:
    gateway = await gateway_factory(whole_answer_keepalive_s=PATIENCE_S)
    response = await _post(gateway, path, body, {**VERSION, **_bearer(account)})
    assert response.status == 200
    assert int(response.headers["content-length"]) == len(response.body)
    assert "transfer-encoding" not in response.headers
    assert response.body.startswith(b"{") and response.json()


async def test_a_slow_answer_sends_nothing_before_its_body_with_the_setting_off(
    gateway: Gateway, emulator: Emulator, account: Account
) -> None:
    _slow(emulator)
    response = await _post(gateway, "/v1/chat/completions", _chat("default"), _bearer(account))
    assert response.status == 200
    assert response.head_at >= 1.2  # the head and the body together, once the answer is whole
    assert int(response.headers["content-length"]) == len(response.body) and response.body.startswith(b"{")
    assert response.json()["choices"][0]["message"]["content"] == expected_answer("default", emulator.config)


async def test_a_failure_after_the_headers_is_the_openai_error_object_and_logged_with_its_status(
    gateway_factory: GatewayFactory, emulator: Emulator
) -> None:
    gateway = await gateway_factory(
        admin_key=ADMIN_KEY, whole_answer_keepalive_s=0.2, stream_idle_timeout_s=0.8, failover_attempts=1
    )
    async with admin_session(gateway.url) as admin:
        alice = emulator.create_account("alice")
        await admin.ok("POST", "/accounts", {"token": alice.refresh_token, "label": "alice"})
        key = (await admin.ok("POST", "/keys", {"name": "team"}))["key"]
        emulator.add_fault(Fault(kind="stall"))  # Kimi never says a word: the start fails after its idle timeout
        response = await _post(gateway, "/v1/chat/completions", _chat("silence"), {"Authorization": f"Bearer {key}"})
        assert response.status == 200 and response.head_at < 0.6 and response.spaces_at
        error = orjson.loads(response.body.lstrip())["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["message"]
        await eventually(lambda: emulator.state.live_chats == 0)

        async def logged() -> list[int]:
            return [entry["status"] for entry in (await admin.ok("GET", "/log"))["data"]]

        for _ in range(50):  # the log is written in batches
            if await logged():
                break
            await asyncio.sleep(0.1)
        assert (await logged())[0] >= 500  # the HTTP status was 200; the answer ended in the error's status


async def test_a_failure_after_the_headers_is_the_anthropic_error_object(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account
) -> None:
    gateway = await gateway_factory(whole_answer_keepalive_s=0.2, stream_idle_timeout_s=0.8, failover_attempts=1)
    emulator.add_fault(Fault(kind="stall"))
    response = await _post(gateway, "/v1/messages", _anthropic("silence"), {**VERSION, **_bearer(account)})
    assert response.status == 200 and response.spaces_at
    failed = orjson.loads(response.body.lstrip())
    assert failed["type"] == "error" and failed["error"]["type"] in {"api_error", "overloaded_error"}
    assert failed["error"]["message"] and failed["request_id"] == response.headers["request-id"]


async def test_every_account_busy_then_429_after_the_headers(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account
) -> None:
    gateway = await gateway_factory(whole_answer_keepalive_s=0.2, capacity_wait_s=0.9)
    emulator.configure(first_event_delay_ms=3000)
    holding = asyncio.create_task(_post(gateway, "/v1/chat/completions", _chat("holds"), _bearer(account)))
    await eventually(lambda: emulator.state.requests["chat"] == 1)
    response = await _post(gateway, "/v1/chat/completions", _chat("waits"), _bearer(account))
    assert response.status == 200 and response.spaces_at
    error = orjson.loads(response.body.lstrip())["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["code"]) == ("rate_limit_error", "accounts_busy")
    holding.cancel()  # the first client leaves too
    with contextlib.suppress(asyncio.CancelledError):
        await holding


async def test_a_client_that_leaves_during_the_spaces_cancels_the_upstream_chat(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account
) -> None:
    gateway = await gateway_factory(whole_answer_keepalive_s=0.2)
    # Kimi names the chat at once, then is slow to write: the gateway knows what to cancel and delete.
    emulator.configure(event_delay_ms=20_000, event_count=2)
    port = int(gateway.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = [(b"Content-Type", b"application/json"), *((k.encode(), v.encode()) for k, v in _bearer(account).items())]
    writer.write(request_bytes("POST", "/v1/chat/completions", sent, orjson.dumps(_chat("leaving"))))
    received = b""
    while received.count(b"1\r\n \r\n") < 2:  # the head and two spaces
        received += await asyncio.wait_for(reader.read(65536), 5)
    assert received.startswith(b"HTTP/1.1 200")
    writer.close()
    await eventually(lambda: emulator.state.live_chats == 0, timeout_s=3)
    assert emulator.state.cancelled == 1
    await eventually(lambda: sum(emulator.state.active_streams.values()) == 0, timeout_s=3)

"""The answer path every surface shares (api/answering.py), driven by a made-up surface that writes only its
rendering: one line per piece of text, its own opening, ending and failure lines. Real gateway, real emulator."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from multidict import CIMultiDictProxy

from kimi_free_api.api.answering import answered, guided_answer, guided_batches, read_answer, stream_answer
from kimi_free_api.api.auth import credentials
from kimi_free_api.api.context import service_of
from kimi_free_api.api.keepalive import SSE_COMMENTS, EarlyStart, StreamStyle
from kimi_free_api.core.answer.run import ChatRun
from kimi_free_api.core.errors import GatewayError
from kimi_free_api.core.events import Finished, TextDelta
from kimi_free_api.core.guided.guided import GuidedEvent, ToolCallsMade
from kimi_free_api.core.guided.tools import FunctionTool, ToolSet
from kimi_free_api.core.request import ChatRequest, Message
from kimi_free_api.emulator import Account, Emulator, Fault
from kimi_free_api.emulator.answers import expected_answer
from tests.e2e.support import GatewayFactory, eventually

LINES = "/test/lines"
Surface = Callable[..., Awaitable[aiohttp.ClientSession]]
WEATHER = FunctionTool("get_weather", parameters={"type": "object", "properties": {"city": {"type": "string"}}})
# A style of the made-up surface's own, for its `styled` requests.
STYLE = StreamStyle(keepalive=b"tick\n", opening=b"begun\n", headers={"X-Lines": "styled"})


class _Lines:
    """The made-up surface's rendering."""

    def __init__(self, streaming: bool) -> None:
        self.streaming = streaming
        self.text: list[str] = []
        self.calls: list[str] = []
        self.reason = "stop"

    def take(self, batch: Sequence[GuidedEvent]) -> bytes:
        out: list[bytes] = []
        for event in batch:
            if type(event) is TextDelta:
                self.text.append(event.text)
                out.append(b"text: " + orjson.dumps(event.text) + b"\n")
            elif type(event) is ToolCallsMade:
                calls = [f"{call.name} {call.arguments}" for call in event.calls]
                self.calls += calls
                out += [b"call: " + orjson.dumps(call) + b"\n" for call in calls]
            elif type(event) is Finished:
                self.reason = event.reason
        return b"".join(out) if self.streaming else b""

    @property
    def cut(self) -> bool:
        return False

    def filtered(self) -> None:
        self.reason = "content_filter"


def _failure(exc: GatewayError) -> bytes:
    return b"failed: " + orjson.dumps(exc.message) + b"\n"


async def _respond(
    request: web.Request, chat: ChatRequest, run: ChatRun, early: EarlyStart | None
) -> web.StreamResponse:
    async with guided_answer(chat, run) as guided:
        lines = _Lines(streaming=early is not None)
        if early is None:
            batches = guided_batches(guided, None) if chat.guided else run.batches()
            await read_answer(batches, lines, None)
            body = {"text": "".join(lines.text), "calls": lines.calls, "reason": lines.reason}
            return web.json_response(body)
        writer = await early.writer(service_of(request).keepalive_s)
        response = writer.response

        async def read() -> None:
            batches = guided_batches(guided, writer) if chat.guided else run.batches()
            await read_answer(batches, lines, writer)

        async def closing() -> bytes:
            return b"end: " + lines.reason.encode() + b"\n"

        return await stream_answer(request, response, b"open\n", read, closing, failure=_failure)


async def _lines(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    tools = ToolSet((WEATHER,)) if body.get("tool") else None
    chat = ChatRequest(
        model="kimi",
        messages=(Message("user", body["prompt"]),),
        tokens=await credentials(request),
        stream=body["stream"],
        tools=tools,
    )
    style = STYLE if body.get("styled") else SSE_COMMENTS
    return await answered(request, chat, _failure, functools.partial(_respond, request, chat), style)


@pytest.fixture
async def surface(gateway_factory: GatewayFactory) -> AsyncIterator[Surface]:
    """Starts a gateway that also serves the made-up surface; returns a session on it."""
    async with contextlib.AsyncExitStack() as sessions:

        async def start(**overrides: Any) -> aiohttp.ClientSession:
            gateway = await gateway_factory(lambda app: app.router.add_post(LINES, _lines), **overrides)
            timeout = aiohttp.ClientTimeout(total=30)
            return await sessions.enter_async_context(aiohttp.ClientSession(gateway.url, timeout=timeout))

        yield start


async def _ask(session: aiohttp.ClientSession, account: Account, **body: Any) -> tuple[int, bytes]:
    status, raw, _ = await _ask_with_headers(session, account, **body)
    return status, raw


async def _ask_with_headers(
    session: aiohttp.ClientSession, account: Account, **body: Any
) -> tuple[int, bytes, CIMultiDictProxy[str]]:
    headers = {"Authorization": f"Bearer {account.refresh_token}"}
    async with session.post(LINES, json=body, headers=headers) as response:
        return response.status, await response.read(), response.headers


def _shown(raw: bytes) -> str:
    return "".join(orjson.loads(line[len(b"text: ") :]) for line in raw.splitlines() if line.startswith(b"text: "))


async def test_a_surface_streams_an_answer_writing_only_its_rendering(
    surface: Surface, emulator: Emulator, account: Account
) -> None:
    status, raw = await _ask(await surface(), account, prompt="hello there", stream=True)
    assert status == 200
    lines = raw.splitlines()
    assert lines[0] == b"open" and lines[-1] == b"end: stop"
    assert _shown(raw) == expected_answer("hello there", emulator.config)
    await eventually(lambda: emulator.state.live_chats == 0)  # the path closed the run: nothing is left upstream


async def test_a_surface_returns_a_whole_answer(surface: Surface, emulator: Emulator, account: Account) -> None:
    status, raw = await _ask(await surface(), account, prompt="whole", stream=False)
    assert status == 200
    assert orjson.loads(raw) == {"text": expected_answer("whole", emulator.config), "calls": [], "reason": "stop"}


async def test_a_failure_mid_stream_is_the_surfaces_failure_line(
    surface: Surface, emulator: Emulator, account: Account
) -> None:
    emulator.add_fault(Fault(kind="stream_error", after_events=2))
    status, raw = await _ask(await surface(), account, prompt="break", stream=True)
    assert status == 200
    lines = raw.splitlines()
    assert lines[0] == b"open" and _shown(raw)
    assert lines[-1].startswith(b"failed: ") and b"end: stop" not in lines


async def test_a_start_that_fails_after_keepalives_is_the_surfaces_failure_line(
    surface: Surface, emulator: Emulator, account: Account
) -> None:
    emulator.add_fault(Fault(kind="stall"))
    session = await surface(stream_idle_timeout_s=0.6, keepalive_s=0.1, failover_attempts=1)
    status, raw = await _ask(session, account, prompt="silence", stream=True)
    assert status == 200  # the headers went out with the first keep-alive comment
    events = [event for event in raw.split(b"\n\n") if event]
    assert events[0] == b": keep-alive"
    assert events[-1].startswith(b"failed: ") and b"open" not in raw


async def test_a_start_that_fails_before_anything_was_sent_is_an_http_error(
    surface: Surface, emulator: Emulator, account: Account
) -> None:
    emulator.add_fault(Fault(kind="internal", times=10))
    status, raw = await _ask(await surface(failover_attempts=1), account, prompt="no", stream=True)
    assert status == 502  # nothing was sent yet: the gateway's ordinary error response, not a stream
    assert orjson.loads(raw)["error"]["code"] == "upstream_error"


async def test_a_surface_gets_checked_tool_calls_through_the_guided_path(
    surface: Surface, emulator: Emulator, account: Account
) -> None:
    emulator.script(['<tool_call name="get_weather">{"city": "Paris"}</tool_call>'])
    status, raw = await _ask(await surface(), account, prompt="weather?", stream=False, tool=True)
    assert status == 200
    assert orjson.loads(raw) == {"text": "", "calls": ['get_weather {"city":"Paris"}'], "reason": "stop"}


async def test_a_surface_keeps_its_streams_alive_in_its_own_style(
    surface: Surface, emulator: Emulator, account: Account
) -> None:
    emulator.configure(first_event_delay_ms=400, event_delay_ms=250, event_count=2)
    session = await surface(keepalive_s=0.05)
    status, raw, headers = await _ask_with_headers(session, account, prompt="slowly", stream=True, styled=True)
    assert status == 200 and headers["X-Lines"] == "styled"
    assert headers["Content-Type"].startswith("text/event-stream")
    lines = raw.splitlines()
    # Its opening before the wait for an answer, its keep-alives during that wait and between two texts.
    assert lines[0] == b"begun" and lines[1] == b"tick"
    assert set(lines[1 : lines.index(b"open")]) == {b"tick"}
    first_text = next(i for i, line in enumerate(lines) if line.startswith(b"text: "))
    second_text = next(i for i, line in enumerate(lines) if i > first_text and line.startswith(b"text: "))
    assert b"tick" in lines[first_text:second_text]
    assert lines[-1] == b"end: stop"
    assert b"keep-alive" not in raw
    assert _shown(raw) == expected_answer("slowly", emulator.config)


async def test_a_start_failure_follows_the_surfaces_opening(
    surface: Surface, emulator: Emulator, account: Account
) -> None:
    emulator.add_fault(Fault(kind="stall"))
    session = await surface(stream_idle_timeout_s=0.6, keepalive_s=0.1, failover_attempts=1)
    status, raw = await _ask(session, account, prompt="silence", stream=True, styled=True)
    assert status == 200
    lines = raw.splitlines()
    assert lines[:2] == [b"begun", b"tick"]
    assert lines[-1].startswith(b"failed: ") and b"open" not in raw

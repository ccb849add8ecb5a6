"""Big and hostile replies are parsed without freezing the gateway: /ping keeps answering while they are checked.

Emulator and gateway share this test's event loop, so any stall while a reply is parsed shows in the latency of
/ping requests sent meanwhile. Each scripted reply hits a path that was quadratic or exponential before (seconds
to minutes of one frozen loop): a tool call whose tag holds a 40 KB word and whose fenced body 60 KB of blanks,
and a `pattern` that backtracks exponentially on 28 letters.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI

from kimi_free_api.emulator import Emulator

MAX_PING_MS = 250.0
PAUSE_S = 0.01
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
ASK: Any = [{"role": "user", "content": "What's the weather in Paris?"}]


async def _worst_ping_while(http: aiohttp.ClientSession, work: Awaitable[Any]) -> tuple[Any, float]:
    """The slowest /ping while `work` runs, counting the pause after it: the client shares the loop, so a stall
    between two pings delays the wake-up from that pause rather than a ping."""
    task = asyncio.ensure_future(work)
    worst = 0.0
    pings = 0
    while not task.done() or pings < 3:
        started = time.perf_counter()
        async with http.get("/ping") as response:
            assert response.status == 200
        await asyncio.sleep(PAUSE_S)
        worst = max(worst, (time.perf_counter() - started - PAUSE_S) * 1000)
        pings += 1
    return await task, worst


async def test_a_huge_tool_call_reply_leaves_ping_responsive(
    client: AsyncOpenAI, emulator: Emulator, http: aiohttp.ClientSession
) -> None:
    reply = (
        "Let me look that up.\n\n"
        + "<tool_call "
        + "a" * 40_000
        + ' name="get_weather">```json\n'
        + " " * 60_000
        + '{"city": "Paris"}\n```</tool_call>'
    )
    emulator.script([reply])
    answer, worst = await _worst_ping_while(
        http, client.chat.completions.create(model="kimi", messages=ASK, tools=[WEATHER], stream=False)
    )
    [call] = answer.choices[0].message.tool_calls
    assert call.function.name == "get_weather" and call.function.arguments == '{"city":"Paris"}'
    assert answer.choices[0].message.content == "Let me look that up."
    assert worst < MAX_PING_MS, f"/ping took {worst:.0f} ms"


async def test_a_backtracking_pattern_leaves_ping_responsive(
    client: AsyncOpenAI, emulator: Emulator, http: aiohttp.ClientSession
) -> None:
    schema = {"type": "object", "properties": {"s": {"type": "string", "pattern": "^(a+)+$"}}, "required": ["s"]}
    emulator.script(['{"s": "' + "a" * 28 + 'b"}', '{"s": "aaa"}'])
    response_format: Any = {"type": "json_schema", "json_schema": {"name": "s", "schema": schema, "strict": True}}
    answer, worst = await _worst_ping_while(
        http, client.chat.completions.create(model="kimi", messages=ASK, response_format=response_format)
    )
    # The first reply does not match; the repair round's does.
    assert answer.choices[0].message.content == '{"s": "aaa"}'
    assert worst < MAX_PING_MS, f"/ping took {worst:.0f} ms"


@pytest.mark.parametrize(
    ("pattern", "named"),
    [("^(?=.*[0-9]).+$", "lookaround"), ("^(.)\\1$", "backreference")],
)
async def test_a_pattern_that_needs_backtracking_is_a_400_naming_it(
    client: AsyncOpenAI, pattern: str, named: str
) -> None:
    tool: Any = {
        "type": "function",
        "function": {"name": "f", "parameters": {"type": "object", "properties": {"p": {"pattern": pattern}}}},
    }
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model="kimi", messages=ASK, tools=[tool])
    error: Any = caught.value.body
    assert error["param"] == "tools[0].function.parameters" and error["code"] == "invalid_schema"
    assert "the `pattern`" in error["message"] and named in error["message"]


async def test_an_absurdly_long_stop_sequence_is_a_400(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model="kimi", messages=ASK, stop=["x" * 10_000])
    error: Any = caught.value.body
    assert error["param"] == "stop" and "at most 256 characters" in error["message"]

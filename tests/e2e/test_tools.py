"""Tool calling and JSON output on chat completions, end to end: the real `openai` client → gateway → emulator,
with Kimi's answers scripted (including the malformed ones that trigger a repair round)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import openai
import orjson
import pytest
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessage, ChatCompletionMessageFunctionToolCall

from kimi_free_api.core.conversation.prompt import PREAMBLE
from kimi_free_api.emulator import Account, Emulator
from tests.e2e.support import GatewayFactory, eventually, openai_client

WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
TIME: Any = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
STRICT_WEATHER: Any = {"type": "function", "function": {**WEATHER["function"], "strict": True}}
ASK: Any = [{"role": "user", "content": "What's the weather in Paris?"}]


def call(name: str, arguments: str) -> str:
    return f'<tool_call name="{name}">{arguments}</tool_call>'


def function_calls(message: ChatCompletionMessage) -> list[ChatCompletionMessageFunctionToolCall]:
    calls = [c for c in message.tool_calls or [] if isinstance(c, ChatCompletionMessageFunctionToolCall)]
    assert len(calls) == len(message.tool_calls or [])
    return calls


def sent_texts(emulator: Emulator) -> list[str]:
    return [body["message"]["blocks"][0]["text"]["content"] for body in emulator.state.chat_requests]


async def test_a_tool_call(client: AsyncOpenAI, emulator: Emulator) -> None:
    emulator.script([call("get_weather", '{"city": "Paris", "unit": "c"}')])
    reply = await client.chat.completions.create(model="kimi", messages=ASK, tools=[WEATHER, TIME])
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [tool_call] = function_calls(choice.message)
    assert tool_call.type == "function" and tool_call.id.startswith("call_")
    assert tool_call.function.name == "get_weather"
    assert json.loads(tool_call.function.arguments) == {"city": "Paris", "unit": "c"}
    [prompt] = sent_texts(emulator)
    assert prompt.startswith("What's the weather in Paris?\n\n# Tools")
    assert '"name":"get_weather","description":"Current weather in a city"' in prompt
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    await eventually(lambda: emulator.state.live_chats == 0)


async def test_parallel_calls_with_prose_before_them(client: AsyncOpenAI, emulator: Emulator) -> None:
    emulator.script(
        ["Let me look both up.\n\n" + call("get_weather", '{"city": "Paris"}') + "\n" + call("get_time", "{}")]
    )
    reply = await client.chat.completions.create(model="kimi", messages=ASK, tools=[WEATHER, TIME])
    message = reply.choices[0].message
    assert message.content == "Let me look both up."
    calls = function_calls(message)
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {}),
    ]
    assert len({c.id for c in calls}) == 2


async def test_without_parallel_calls_only_the_first_is_kept(client: AsyncOpenAI, emulator: Emulator) -> None:
    emulator.script([call("get_time", "{}") + call("get_weather", '{"city": "Paris"}')])
    reply = await client.chat.completions.create(
        model="kimi", messages=ASK, tools=[WEATHER, TIME], parallel_tool_calls=False
    )
    assert [c.function.name for c in function_calls(reply.choices[0].message)] == ["get_time"]
    assert "Call at most one tool" in sent_texts(emulator)[0]


async def test_a_plain_answer_when_no_tool_is_needed(client: AsyncOpenAI, emulator: Emulator) -> None:
    emulator.script(["It is sunny, 1 < 2 and `x`."])
    reply = await client.chat.completions.create(model="kimi", messages=ASK, tools=[WEATHER])
    assert reply.choices[0].finish_reason == "stop"
    assert reply.choices[0].message.content == "It is sunny, 1 < 2 and `x`."
    assert reply.choices[0].message.tool_calls is None


async def test_streamed_tool_calls_follow_openais_delta_shape(
    http: aiohttp.ClientSession, emulator: Emulator, account: Account
) -> None:
    emulator.configure(event_count=40)  # the call block arrives cut into many pieces
    emulator.script(["Checking the weather now.\n" + call("get_weather", '{"city": "Paris"}') + call("get_time", "{}")])
    body = {
        "model": "kimi",
        "messages": ASK,
        "tools": [WEATHER, TIME],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    headers = {"Authorization": f"Bearer {account.refresh_token}"}
    async with http.post("/v1/chat/completions", json=body, headers=headers) as response:
        raw = await response.read()
    events = [e[len(b"data: ") :] for e in raw.split(b"\n\n") if e.startswith(b"data: ")]
    assert events[-1] == b"[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    content = "".join(d.get("content") or "" for d in deltas)
    assert content == "Checking the weather now."
    call_deltas = [tc for d in deltas for tc in d.get("tool_calls", [])]
    assert all("index" in tc for tc in call_deltas)
    heads = [tc for tc in call_deltas if "id" in tc]
    assert [(h["index"], h["type"], h["function"]["name"], h["function"]["arguments"]) for h in heads] == [
        (0, "function", "get_weather", ""),
        (1, "function", "get_time", ""),
    ]
    arguments = ["".join(tc["function"]["arguments"] for tc in call_deltas if tc["index"] == i) for i in (0, 1)]
    assert [json.loads(a) for a in arguments] == [{"city": "Paris"}, {}]
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "tool_calls" and finishes.count("tool_calls") == 1
    usage_chunks = [c for c in chunks if c.get("usage")]
    assert len(usage_chunks) == 1 and usage_chunks[0]["choices"] == [] and chunks[-1] is usage_chunks[0]


async def test_the_stream_helper_assembles_tool_calls(client: AsyncOpenAI, emulator: Emulator) -> None:
    emulator.script([call("get_weather", '{"city": "Oslo"}') + "\n" + call("get_weather", '{"city": "Rome"}')])
    async with client.chat.completions.stream(model="kimi", messages=ASK, tools=[STRICT_WEATHER]) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_completion()
    assert "tool_calls.function.arguments.done" in kinds
    calls = final.choices[0].message.tool_calls or []
    assert [c.function.parsed_arguments for c in calls] == [{"city": "Oslo"}, {"city": "Rome"}]
    assert final.choices[0].finish_reason == "tool_calls"


async def test_a_malformed_call_is_repaired_in_the_same_kimi_chat(client: AsyncOpenAI, emulator: Emulator) -> None:
    emulator.script([call("get_wether", '{"city": "Paris"}'), call("get_weather", '{"city": "Paris"}')])
    reply = await client.chat.completions.create(model="kimi", messages=ASK, tools=[WEATHER])
    [tool_call] = function_calls(reply.choices[0].message)
    assert tool_call.function.name == "get_weather"
    first, repair = emulator.state.chat_requests
    assert "chat_id" not in first and repair["chat_id"] == reply.id
    assert "there is no tool named `get_wether`; the tools are `get_weather`" in sent_texts(emulator)[1]
    # One chat, two turns; deleted once answered.
    await eventually(lambda: emulator.state.live_chats == 0)
    assert emulator.state.requests["delete"] == 1


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (call("get_weather", "{city: Paris}"), "not valid JSON"),
        (call("get_weather", '{"unit": "c"}'), "missing required property 'city'"),
        (call("get_weather", '{"city": "Paris", "unit": "k"}'), "unit: 'k' is not one of 'c', 'f'"),
        ('<tool_call name="get_weather">{"city": "Paris"', "not valid JSON"),
        ("I will call <tool_call", "holds no complete <tool_call> element"),
    ],
)
async def test_what_gets_repaired(client: AsyncOpenAI, emulator: Emulator, bad: str, problem: str) -> None:
    emulator.script([bad, call("get_weather", '{"city": "Paris"}')])
    reply = await client.chat.completions.create(model="kimi", messages=ASK, tools=[STRICT_WEATHER])
    assert reply.choices[0].finish_reason == "tool_calls"
    assert problem in sent_texts(emulator)[1]


async def test_a_second_failure_is_an_error(client: AsyncOpenAI, emulator: Emulator) -> None:
    emulator.script([call("nope", "{}"), call("still_nope", "{}")])
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(model="kimi", messages=ASK, tools=[WEATHER])
    assert caught.value.status_code == 502
    error = caught.value.body
    assert isinstance(error, dict) and error["code"] == "invalid_model_output"
    assert "there is no tool named `still_nope`" in error["message"]
    await eventually(lambda: emulator.state.live_chats == 0)


async def test_a_second_failure_mid_stream_is_an_error_event(client: AsyncOpenAI, emulator: Emulator) -> None:
    emulator.script(["Sure. " + call("nope", "{}"), call("nope", "{}")])
    stream = await client.chat.completions.create(model="kimi", messages=ASK, tools=[WEATHER], stream=True)
    with pytest.raises(openai.APIError, match="even after a repair request"):
        async for _ in stream:
            pass


async def test_schema_mismatch_of_a_non_strict_tool_passes_after_the_repair(
    client: AsyncOpenAI, emulator: Emulator
) -> None:
    emulator.script([call("get_weather", '{"town": "Paris"}')] * 2)
    reply = await client.chat.completions.create(model="kimi", messages=ASK, tools=[WEATHER])
    [tool_call] = function_calls(reply.choices[0].message)
    assert json.loads(tool_call.function.arguments) == {"town": "Paris"}
    emulator.script([call("get_weather", '{"town": "Paris"}')] * 2)
    with pytest.raises(openai.APIStatusError):
        await client.chat.completions.create(model="kimi", messages=ASK, tools=[STRICT_WEATHER])


async def test_required_and_named_tool_choice(client: AsyncOpenAI, emulator: Emulator) -> None:
    emulator.script(["It is probably sunny.", call("get_time", "{}")])
    reply = await client.chat.completions.create(
        model="kimi", messages=ASK, tools=[WEATHER, TIME], tool_choice="required"
    )
    assert [c.function.name for c in function_calls(reply.choices[0].message)] == ["get_time"]
    assert "the reply must call at least one tool, but it calls none" in sent_texts(emulator)[1]
    emulator.script([call("get_time", "{}"), call("get_weather", '{"city": "Paris"}')])
    reply = await client.chat.completions.create(
        model="kimi",
        messages=ASK,
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    assert [c.function.name for c in function_calls(reply.choices[0].message)] == ["get_weather"]
    assert "the reply must call `get_weather`, not `get_time`" in sent_texts(emulator)[-1]


async def test_tool_choice_none_never_shows_protocol_text(client: AsyncOpenAI, emulator: Emulator) -> None:
    emulator.script(["No tools today. " + call("get_time", "{}")])
    stream = await client.chat.completions.create(
        model="kimi", messages=ASK, tools=[WEATHER, TIME], tool_choice="none", stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "No tools today."
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert "No tool may be called" in sent_texts(emulator)[0]


async def test_a_tool_loop_continues_the_kimi_chat_with_the_results(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account
) -> None:
    gateway = await gateway_factory(conversation_ttl_s=60)
    emulator.script([call("get_weather", '{"city": "Paris"}'), "It is 21 °C and sunny in Paris."])
    async with openai_client(gateway, account.refresh_token) as client:
        first = await client.chat.completions.create(model="kimi", messages=ASK, tools=[WEATHER])
        message = first.choices[0].message
        [tool_call] = message.tool_calls or []
        history: Any = [
            *ASK,
            message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": tool_call.id, "content": '{"temp": 21, "sky": "sunny"}'},
        ]
        second = await client.chat.completions.create(model="kimi", messages=history, tools=[WEATHER])
    assert second.choices[0].message.content == "It is 21 °C and sunny in Paris."
    # The second turn continues the first Kimi chat, sending only the tool result (and the tools again).
    assert emulator.state.chat_requests[1]["chat_id"] == first.id
    sent = sent_texts(emulator)[1]
    assert sent.startswith(PREAMBLE + f'\n\n<tool tool_call_id="{tool_call.id}">\n{{"temp": 21')
    assert "What's the weather" not in sent and "# Tools" in sent


async def test_deprecated_functions_answer_with_function_call(client: AsyncOpenAI, emulator: Emulator) -> None:
    emulator.script([call("get_weather", '{"city": "Paris"}')])
    reply = await client.chat.completions.create(
        model="kimi", messages=ASK, functions=[WEATHER["function"]], function_call="auto"
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "function_call" and choice.message.tool_calls is None
    assert choice.message.function_call is not None
    assert (choice.message.function_call.name, choice.message.function_call.arguments) == (
        "get_weather",
        '{"city":"Paris"}',
    )


async def test_json_object_output_never_has_fences(client: AsyncOpenAI, emulator: Emulator) -> None:
    emulator.script(['Here you go:\n```json\n{"city": "Paris", "temp": 21}\n```'] * 2)
    reply = await client.chat.completions.create(model="kimi", messages=ASK, response_format={"type": "json_object"})
    assert reply.choices[0].message.content == '{"city": "Paris", "temp": 21}'
    assert "Answer with one JSON value and nothing else" in sent_texts(emulator)[0]
    stream = await client.chat.completions.create(
        model="kimi", messages=ASK, response_format={"type": "json_object"}, stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert json.loads(text) == {"city": "Paris", "temp": 21}


async def test_json_schema_output_is_repaired_then_parsed(client: AsyncOpenAI, emulator: Emulator) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "temp": {"type": "number"}},
        "required": ["city", "temp"],
        "additionalProperties": False,
    }
    fmt: Any = {"type": "json_schema", "json_schema": {"name": "weather", "schema": schema, "strict": True}}
    emulator.script(['{"city": "Paris", "temp": "warm"}', '{"city": "Paris", "temp": 21.5}'])
    reply = await client.chat.completions.create(model="kimi", messages=ASK, response_format=fmt)
    assert json.loads(reply.choices[0].message.content or "") == {"city": "Paris", "temp": 21.5}
    assert "temp: expected number, got string" in sent_texts(emulator)[1]
    emulator.script(["I cannot answer in JSON.", "Sorry, still no."])
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(model="kimi", messages=ASK, response_format=fmt)
    assert caught.value.status_code == 502 and "contains no valid JSON value" in caught.value.message


async def test_prose_is_streamed_live_while_the_call_block_is_held(client: AsyncOpenAI, emulator: Emulator) -> None:
    emulator.configure(event_count=30, event_delay_ms=20)
    emulator.script(["A fairly long sentence that arrives in pieces before the call. " + call("get_time", "{}")])
    stream = await client.chat.completions.create(model="kimi", messages=ASK, tools=[TIME], stream=True)
    pieces = [c.choices[0].delta.content async for c in stream if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 5, "prose is relayed as it arrives, not held to the end"
    assert "".join(pieces) == "A fairly long sentence that arrives in pieces before the call."

"""POST /v1/responses end to end: the real `openai` client (and raw SSE) → gateway → emulator."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import openai
import orjson
import pytest
from openai import AsyncOpenAI
from openai.types.responses import Response, ResponseFunctionToolCall
from pydantic import BaseModel

from kimi_free_api.core.usage.tokenizer import BpeCounter
from kimi_free_api.emulator import Account, Emulator, Fault
from kimi_free_api.emulator.answers import expected_answer, expected_thinking
from tests.e2e.support import Gateway, GatewayFactory, eventually, openai_client

WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
REQUIRED_KEYS = {
    "id", "object", "created_at", "status", "error", "incomplete_details", "instructions", "model", "tools",
    "output", "parallel_tool_calls", "metadata", "tool_choice", "temperature", "top_p",
}  # fmt: skip


def call(name: str, arguments: str) -> str:
    return f'<tool_call name="{name}">{arguments}</tool_call>'


def sent_texts(emulator: Emulator) -> list[str]:
    return [body["message"]["blocks"][0]["text"]["content"] for body in emulator.state.chat_requests]


async def raw_events(http: aiohttp.ClientSession, account: Account, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The stream's events, checked for the framing every client relies on."""
    headers = {"Authorization": f"Bearer {account.refresh_token}"}
    async with http.post("/v1/responses", json={"model": "kimi", "stream": True, **body}, headers=headers) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        raw = await response.read()
    assert raw.endswith(b"\n\n") and b"[DONE]" not in raw
    events = []
    for block in raw.decode().split("\n\n"):
        if not block or block.startswith(":"):
            continue
        name_line, data_line = block.split("\n")
        event = orjson.loads(data_line.removeprefix("data: "))
        assert name_line == f"event: {event['type']}"
        events.append(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


async def test_a_plain_response(client: AsyncOpenAI, emulator: Emulator) -> None:
    response = await client.responses.create(model="kimi", input="Hello there", instructions="Be brief.")
    assert response.status == "completed" and response.object == "response"
    assert response.id.startswith("resp_") and response.instructions == "Be brief."
    [message] = response.output
    assert message.type == "message" and message.role == "assistant" and message.status == "completed"
    [prompt] = sent_texts(emulator)
    assert "<system>\nBe brief.\n</system>" in prompt
    assert response.output_text == expected_answer(prompt, emulator.config)
    usage = response.usage
    assert usage is not None
    counter = BpeCounter()
    assert usage.input_tokens == counter.count(prompt)
    assert usage.output_tokens == counter.count(response.output_text)
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    await eventually(lambda: emulator.state.live_chats == 0)


async def test_the_response_object_has_every_required_key(
    http: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    headers = {"Authorization": f"Bearer {account.refresh_token}"}
    async with http.post("/v1/responses", json={"model": "kimi", "input": "hi"}, headers=headers) as response:
        body = await response.json()
    assert set(body) >= REQUIRED_KEYS
    assert body["usage"]["input_tokens_details"] == {"cached_tokens": 0, "cache_write_tokens": 0}
    assert body["usage"]["output_tokens_details"] == {"reasoning_tokens": 0}
    Response.model_validate(body)  # the SDK's own model, strictly: every field it requires is there
    assert body["output"][0]["content"][0] == {
        "type": "output_text",
        "text": expected_answer("hi", emulator.config),
        "annotations": [],
        "logprobs": [],
    }


async def test_the_stream_sends_the_event_sequence_clients_check(
    http: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    events = await raw_events(http, account, {"input": "stream it"})
    kinds = [e["type"] for e in events]
    deltas = kinds.count("response.output_text.delta")
    assert deltas == emulator.config.event_count
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * deltas,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[0]["response"]["status"] == "in_progress" and events[0]["response"]["output"] == []
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == expected_answer("stream it", emulator.config)
    completed = events[-1]["response"]
    assert completed["status"] == "completed" and completed["output"][0]["content"][0]["text"] == text
    assert completed["usage"]["output_tokens"] > 0
    item_id = events[2]["item"]["id"]
    assert all(e["item_id"] == item_id for e in events[3:-2] if "item_id" in e)


async def test_the_stream_helper(client: AsyncOpenAI, emulator: Emulator) -> None:
    async with client.responses.stream(model="kimi", input="helper") as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_response()
    assert final.output_text == expected_answer("helper", emulator.config)


async def test_a_function_call_and_its_result(client: AsyncOpenAI, emulator: Emulator) -> None:
    emulator.script(["Checking.\n" + call("get_weather", '{"city": "Paris"}'), "21 °C in Paris."])
    first = await client.responses.create(model="kimi", input="Weather in Paris?", tools=[WEATHER])
    message, function_call = first.output
    assert message.type == "message" and first.output_text == "Checking."
    assert isinstance(function_call, ResponseFunctionToolCall) and function_call.status == "completed"
    assert (function_call.name, json.loads(function_call.arguments)) == ("get_weather", {"city": "Paris"})
    assert function_call.call_id.startswith("call_") and (function_call.id or "").startswith("fc_")
    result: Any = {"type": "function_call_output", "call_id": function_call.call_id, "output": "sunny, 21 °C"}
    second = await client.responses.create(model="kimi", input=[result], tools=[WEATHER], previous_response_id=first.id)
    assert second.output_text == "21 °C in Paris."
    sent = sent_texts(emulator)[1]
    assert "<user>\nWeather in Paris?\n</user>" in sent
    assert f'<tool_call id="{function_call.call_id}" name="get_weather">{{"city":"Paris"}}</tool_call>' in sent
    assert f'<tool tool_call_id="{function_call.call_id}" name="get_weather">\nsunny, 21 °C\n</tool>' in sent


async def test_streamed_function_calls(http: aiohttp.ClientSession, account: Account, emulator: Emulator) -> None:
    emulator.script([call("get_weather", '{"city": "Oslo"}') + call("get_weather", '{"city": "Rome"}')])
    events = await raw_events(http, account, {"input": "Weather?", "tools": [WEATHER]})
    kinds = [e["type"] for e in events]
    assert kinds == [
        "response.created",
        "response.in_progress",
        *[
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
        ]
        * 2,
        "response.completed",
    ]
    added = [e for e in events if e["type"] == "response.output_item.added"]
    assert [(e["output_index"], e["item"]["arguments"], e["item"]["status"]) for e in added] == [
        (0, "", "in_progress"),
        (1, "", "in_progress"),
    ]
    done = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert [(e["name"], json.loads(e["arguments"])) for e in done] == [
        ("get_weather", {"city": "Oslo"}),
        ("get_weather", {"city": "Rome"}),
    ]
    assert [item["type"] for item in events[-1]["response"]["output"]] == ["function_call", "function_call"]


async def test_previous_response_id_must_be_known_to_the_caller(
    client: AsyncOpenAI, gateway: Gateway, emulator: Emulator
) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await client.responses.create(model="kimi", input="x", previous_response_id="resp_unknown")
    assert caught.value.code == "previous_response_not_found"
    first = await client.responses.create(model="kimi", input="x")
    async with openai_client(gateway, emulator.create_account("bob").refresh_token) as other:
        with pytest.raises(openai.NotFoundError):
            await other.responses.create(model="kimi", input="y", previous_response_id=first.id)
    unstored = await client.responses.create(model="kimi", input="x", store=False)
    with pytest.raises(openai.NotFoundError):
        await client.responses.create(model="kimi", input="y", previous_response_id=unstored.id)


async def test_thinking_becomes_a_reasoning_item(
    client: AsyncOpenAI, http: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    response = await client.responses.create(model="kimi-thinking", input="think")
    reasoning, message = response.output
    assert reasoning.type == "reasoning" and message.type == "message"
    assert reasoning.content is not None
    assert reasoning.content[0].text == expected_thinking("think", emulator.config)
    assert response.usage is not None and response.usage.output_tokens_details.reasoning_tokens > 0
    events = await raw_events(http, account, {"model": "kimi-thinking", "input": "think"})
    kinds = [e["type"] for e in events]
    assert kinds[2] == "response.output_item.added" and events[2]["item"]["type"] == "reasoning"
    reasoning_done = kinds.index("response.reasoning_text.done")
    assert kinds[reasoning_done + 1] == "response.output_item.done"
    assert kinds[reasoning_done + 2] == "response.output_item.added"
    thought = "".join(e["delta"] for e in events if e["type"] == "response.reasoning_text.delta")
    assert thought == expected_thinking("think", emulator.config)


async def test_a_failure_after_the_start_is_response_failed(
    http: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    emulator.add_fault(Fault("stream_error", after_events=3))
    events = await raw_events(http, account, {"input": "fail please"})
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-3:] == ["response.content_part.done", "response.output_item.done", "response.failed"]
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"


async def test_a_failure_before_the_start_is_an_http_error(client: AsyncOpenAI, emulator: Emulator) -> None:
    emulator.add_fault(Fault("quota"))
    with pytest.raises(openai.RateLimitError):
        await client.responses.create(model="kimi", input="x", stream=True)


async def test_max_output_tokens_makes_an_incomplete_response(client: AsyncOpenAI, emulator: Emulator) -> None:
    response = await client.responses.create(model="kimi", input="a long answer please", max_output_tokens=16)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"
    assert len(response.output_text) < len(expected_answer("a long answer please", emulator.config))


async def test_hosted_and_namespace_tools_are_accepted(client: AsyncOpenAI, emulator: Emulator) -> None:
    emulator.script([call("crm.find_customer", '{"name": "Ann"}')])
    tools: Any = [
        {"type": "web_search"},
        {"type": "file_search", "vector_store_ids": ["vs_1"]},
        {"type": "custom", "name": "apply_patch", "description": "Patch files"},
        {
            "type": "namespace",
            "name": "crm",
            "description": "Customer records",
            "tools": [
                {"type": "function", "name": "find_customer", "parameters": {"type": "object"}},
                {"type": "custom", "name": "raw"},
            ],
        },
    ]
    response = await client.responses.create(model="kimi", input="Find Ann", tools=tools)
    [item] = response.output
    assert item.type == "function_call"
    assert (item.name, getattr(item, "namespace", None), item.arguments) == ("find_customer", "crm", '{"name":"Ann"}')
    [sent] = emulator.state.chat_requests
    assert sent["tools"][0]["type"] == "TOOL_TYPE_SEARCH", "web_search turns on Kimi's search"
    prompt = sent_texts(emulator)[0]
    assert '"name":"crm.find_customer"' in prompt and "apply_patch" not in prompt and "raw" not in prompt


class Weather(BaseModel):
    city: str
    temp: float


async def test_structured_output_with_responses_parse(client: AsyncOpenAI, emulator: Emulator) -> None:
    emulator.script(['```json\n{"city": "Paris", "temp": 21}\n```'])
    response = await client.responses.parse(model="kimi", input="Weather as JSON", text_format=Weather)
    assert response.output_parsed == Weather(city="Paris", temp=21)
    assert '"title":"Weather"' in sent_texts(emulator)[0]


async def test_responses_without_the_v1_prefix(gateway: Gateway, account: Account) -> None:
    async with aiohttp.ClientSession(base_url=gateway.url) as http:
        headers = {"Authorization": f"Bearer {account.refresh_token}"}
        async with http.post("/responses", json={"model": "kimi", "input": "x"}, headers=headers) as response:
            assert response.status == 200
            assert (await response.json())["status"] == "completed"
        async with http.post("/v1/responses", json={"model": "kimi", "input": 5}, headers=headers) as response:
            assert response.status == 400
            assert (await response.json())["error"]["param"] == "input"


async def test_previous_response_id_continues_the_kimi_chat_that_holds_it(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account
) -> None:
    gateway = await gateway_factory(conversation_ttl_s=60)
    emulator.script([call("get_weather", '{"city": "Paris"}'), "Sunny in Paris."])
    async with openai_client(gateway, account.refresh_token) as client:
        first = await client.responses.create(model="kimi", input="Weather in Paris?", tools=[WEATHER])
        [function_call] = first.output
        assert isinstance(function_call, ResponseFunctionToolCall)
        result: Any = {"type": "function_call_output", "call_id": function_call.call_id, "output": "sunny"}
        second = await client.responses.create(
            model="kimi", input=[result], tools=[WEATHER], previous_response_id=first.id
        )
    assert second.output_text == "Sunny in Paris."
    opening, continued = emulator.state.chat_requests
    assert "chat_id" not in opening and continued["chat_id"]
    # Only the tool result travels: Kimi's chat already holds the question and the call.
    sent = sent_texts(emulator)[1]
    assert "Weather in Paris?" not in sent and f'<tool tool_call_id="{function_call.call_id}">\nsunny\n</tool>' in sent


async def test_a_response_is_retrieved_as_returned_and_deleted(
    client: AsyncOpenAI, gateway: Gateway, emulator: Emulator
) -> None:
    created = await client.responses.create(model="kimi", input="Keep this one")
    retrieved = await client.responses.retrieve(created.id)
    assert retrieved.model_dump() == created.model_dump()
    async with client.responses.stream(model="kimi", input="And this one") as stream:
        streamed = await stream.get_final_response()
    assert (await client.responses.retrieve(streamed.id)).output_text == streamed.output_text
    with pytest.raises(openai.BadRequestError) as refused:
        await client.responses.retrieve(streamed.id, stream=True)
    assert refused.value.param == "stream"

    async with openai_client(gateway, emulator.create_account("bob").refresh_token) as other:
        with pytest.raises(openai.NotFoundError):
            await other.responses.retrieve(created.id)
        with pytest.raises(openai.NotFoundError):
            await other.responses.delete(created.id)

    await client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.create(model="kimi", input="more", previous_response_id=created.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.delete(created.id)


async def test_an_unstored_or_unknown_response_is_not_found(client: AsyncOpenAI, http: aiohttp.ClientSession) -> None:
    unstored = await client.responses.create(model="kimi", input="x", store=False)
    with pytest.raises(openai.NotFoundError) as caught:
        await client.responses.retrieve(unstored.id)
    assert caught.value.param == "response_id"
    async with http.get("/v1/responses/resp_unknown") as response:
        assert response.status == 401  # no credentials: refused before anything is looked up
        assert set((await response.json())["error"]) == {"message", "type", "param", "code"}


async def test_stored_responses_outlive_a_restart(
    gateway_factory: GatewayFactory, account: Account, emulator: Emulator, tmp_path: Any
) -> None:
    data_dir = str(tmp_path / "kept")
    first = await gateway_factory(data_dir=data_dir)
    async with openai_client(first, account.refresh_token) as client:
        created = await client.responses.create(model="kimi", input="Remember me")
    await first.stop()
    again = await gateway_factory(data_dir=data_dir)
    async with openai_client(again, account.refresh_token) as client:
        assert (await client.responses.retrieve(created.id)).model_dump() == created.model_dump()
        follow = await client.responses.create(model="kimi", input="And now?", previous_response_id=created.id)
    assert follow.status == "completed"
    assert "Remember me" in sent_texts(emulator)[-1], "the restarted gateway still knows the transcript"

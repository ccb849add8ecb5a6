"""The demo's emulator (`guided_answers`) answers tool and JSON requests plausibly, through the whole gateway."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai import AsyncOpenAI

from kimi_free_api.core.guided.jsonschema import schema_errors
from kimi_free_api.emulator import Emulator
from tests.e2e.test_tools import function_calls

WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
QUESTION: Any = [{"role": "user", "content": "What's the weather in Paris?"}]


@pytest.fixture(autouse=True)
def _guided(emulator: Emulator) -> None:
    emulator.configure(guided_answers=True)


async def test_the_readme_required_tool_example(client: AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(
        model="kimi", messages=QUESTION, tools=[WEATHER], tool_choice="required"
    )
    [call] = function_calls(reply.choices[0].message)
    assert reply.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Paris"})


async def test_a_named_tool_is_the_one_called_with_arguments_valid_for_its_schema(client: AsyncOpenAI) -> None:
    booking: Any = {
        "type": "function",
        "function": {
            "name": "book",
            "strict": True,
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"$ref": "#/$defs/city"},
                    "nights": {"type": "integer", "minimum": 2, "maximum": 14},
                    "when": {"type": "string", "format": "date"},
                    "room": {"enum": ["single", "double"]},
                    "guests": {"type": "array", "items": {"type": "string", "minLength": 3}, "minItems": 2},
                    "breakfast": {"type": ["boolean", "null"]},
                },
                "required": ["city", "nights", "when", "room", "guests", "breakfast"],
                "additionalProperties": False,
                "$defs": {"city": {"type": "string", "maxLength": 20}},
            },
        },
    }
    reply = await client.chat.completions.create(
        model="kimi",
        messages=[{"role": "user", "content": "Book two nights in Lisbon"}],
        tools=[WEATHER, booking],
        tool_choice={"type": "function", "function": {"name": "book"}},
    )
    [call] = function_calls(reply.choices[0].message)
    arguments = json.loads(call.function.arguments)
    assert call.function.name == "book" and arguments["city"] == "Lisbon"
    assert schema_errors(arguments, booking["function"]["parameters"]) == []


async def test_with_auto_a_tool_result_gets_a_plain_answer(client: AsyncOpenAI) -> None:
    first = await client.chat.completions.create(model="kimi", messages=QUESTION, tools=[WEATHER])
    [call] = function_calls(first.choices[0].message)
    history: Any = [
        *QUESTION,
        {"role": "assistant", "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "18 °C and sunny"},
    ]
    reply = await client.chat.completions.create(model="kimi", messages=history, tools=[WEATHER])
    assert reply.choices[0].finish_reason == "stop"
    assert reply.choices[0].message.content and not reply.choices[0].message.tool_calls


async def test_json_output_follows_the_schema(client: AsyncOpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "celsius": {"type": "number", "exclusiveMinimum": 0}},
        "required": ["city", "celsius"],
        "additionalProperties": False,
    }
    reply = await client.chat.completions.create(
        model="kimi",
        messages=QUESTION,
        response_format={"type": "json_schema", "json_schema": {"name": "weather", "schema": schema, "strict": True}},
    )
    value = json.loads(reply.choices[0].message.content or "")
    assert value["city"] == "Paris" and schema_errors(value, schema) == []
    plain = await client.chat.completions.create(
        model="kimi", messages=QUESTION, response_format={"type": "json_object"}
    )
    assert isinstance(json.loads(plain.choices[0].message.content or ""), dict)


async def test_off_by_default_prompts_with_tools_get_the_echo(client: AsyncOpenAI, emulator: Emulator) -> None:
    emulator.configure(guided_answers=False)
    reply = await client.chat.completions.create(model="kimi", messages=QUESTION, tools=[WEATHER])
    assert (reply.choices[0].message.content or "").startswith("Echo: ")


async def test_tool_choice_none_gets_prose(client: AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(model="kimi", messages=QUESTION, tools=[WEATHER], tool_choice="none")
    assert reply.choices[0].finish_reason == "stop" and not reply.choices[0].message.tool_calls

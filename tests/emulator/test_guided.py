"""emulator/guided.py: the demo's answers to prompts that declare tools or ask for JSON, checked against the
gateway's own prompt text and JSON Schema checker (the emulator itself knows neither)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kimi_free_api.core.conversation.prompt import build_prompt
from kimi_free_api.core.guided.jsonschema import schema_errors
from kimi_free_api.core.guided.tool_protocol import output_directive, parse_reply
from kimi_free_api.core.guided.tools import FunctionTool, JsonOutput, ToolSet
from kimi_free_api.core.request import Message
from kimi_free_api.emulator.guided import guided_answer

QUESTION = (Message("user", "Plan a trip to Kyoto"),)


def _prompt(tools: ToolSet | None = None, output: JsonOutput | None = None) -> str:
    return build_prompt(QUESTION, output_directive(tools, output))


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"n": {"type": "integer", "exclusiveMinimum": 3, "maximum": 9}}},
        {
            "type": "object",
            "properties": {"pair": {"type": "array", "prefixItems": [{"type": "string"}, {"const": 2}]}},
        },
        {"type": "object", "properties": {"none": {"type": "array", "maxItems": 0}}, "required": ["none"]},
        {"allOf": [{"properties": {"a": {"type": "string"}}}, {"properties": {"b": {"type": "boolean"}}}]},
        {"anyOf": [{"type": "object", "properties": {"x": {"type": "number", "minimum": 0.5}}}, {"type": "null"}]},
        {"type": "object", "properties": {"code": {"type": "string", "minLength": 8, "maxLength": 8}}},
        {"type": "object", "properties": {"tags": {"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 3}}},
    ],
)
def test_json_built_from_the_schema_is_valid_against_it(schema: dict[str, Any]) -> None:
    answer = guided_answer(_prompt(output=JsonOutput(schema=schema, name="plan", strict=True)))
    assert answer is not None
    assert schema_errors(json.loads(answer), schema) == []


def test_a_forced_tool_is_called_with_the_question_in_its_arguments() -> None:
    tools = ToolSet(
        tools=(
            FunctionTool("weather", "", {"type": "object", "properties": {"city": {"type": "string"}}}),
            FunctionTool("trip", "", {"type": "object", "properties": {"city": {"type": "string"}}}),
        ),
        choice="function",
        forced="trip",
    )
    reply = parse_reply(guided_answer(_prompt(tools)) or "")
    assert [(call.name, call.arguments) for call in reply.calls] == [("trip", {"city": "Kyoto"})]


def test_no_tools_and_no_format_is_left_to_the_echo() -> None:
    assert guided_answer("Plan a trip to Kyoto") is None
    assert guided_answer(_prompt(ToolSet(tools=(FunctionTool("f", "", None),), choice="none"))) is None

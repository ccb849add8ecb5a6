"""Tools, tool_choice and JSON formats in chat requests, and Responses API bodies."""

from __future__ import annotations

from typing import Any

import pytest

from kimi_free_api.api.openai.responses_request import parse_responses_request
from kimi_free_api.api.openai.schemas import parse_chat_request
from kimi_free_api.core.errors import InvalidRequest
from kimi_free_api.core.guided.tools import FunctionTool, JsonOutput, ToolSet
from kimi_free_api.core.request import Message, ToolCall

TOKENS = ("t",)
PARAMS = {"type": "object", "properties": {"city": {"type": "string"}}}


def fn(name: str, **extra: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, **extra}}


def chat(**fields: Any) -> Any:
    return parse_chat_request({"model": "kimi", "messages": [{"role": "user", "content": "Hi"}], **fields}, TOKENS)


def refused(**fields: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        chat(**fields)
    return caught.value


def test_tools_become_a_tool_set() -> None:
    request = chat(tools=[fn("get_weather", description="Weather", parameters=PARAMS, strict=True), fn("now")])
    assert request.tools == ToolSet(
        (FunctionTool("get_weather", "Weather", PARAMS, strict=True), FunctionTool("now")), "auto", "", True
    )
    assert request.guided and request.output is None


@pytest.mark.parametrize(
    ("choice", "mode", "forced", "names"),
    [
        ("none", "none", "", ["a", "b"]),
        ("required", "required", "", ["a", "b"]),
        ({"type": "function", "function": {"name": "b"}}, "function", "b", ["a", "b"]),
        (
            {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [fn("b")]}},
            "required",
            "",
            ["b"],
        ),
    ],
)
def test_tool_choice(choice: Any, mode: str, forced: str, names: list[str]) -> None:
    tools = chat(tools=[fn("a"), fn("b")], tool_choice=choice, parallel_tool_calls=False).tools
    assert tools is not None
    assert (tools.choice, tools.forced, [t.name for t in tools.tools], tools.parallel) == (mode, forced, names, False)


def test_no_tools_means_no_tool_set() -> None:
    assert chat(tools=[], tool_choice="required").tools is None


def test_deprecated_functions_are_mapped() -> None:
    tools = chat(functions=[{"name": "f", "parameters": PARAMS}], function_call={"name": "f"}).tools
    assert tools == ToolSet((FunctionTool("f", parameters=PARAMS),), "function", "f", parallel=False, legacy=True)


def test_assistant_function_call_in_history_is_a_tool_call() -> None:
    request = chat(
        messages=[
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": '{"x": 1}'}},
            {"role": "function", "name": "f", "content": "42"},
        ]
    )
    assert request.messages[1].tool_calls == (ToolCall("", "f", '{"x": 1}'),)
    assert request.messages[2] == Message("tool", "42", name="f")


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        ({"tools": [5]}, "tools[0]", "invalid_type"),
        ({"tools": [{"type": "function"}]}, "tools[0].function", "missing_required_parameter"),
        ({"tools": [fn("has space")]}, "tools[0].function.name", "invalid_value"),
        ({"tools": [fn("a"), fn("a")]}, "tools", "invalid_value"),
        ({"tools": [fn("a", description=5)]}, "tools[0].function.description", "invalid_type"),
        ({"tools": [fn("a", strict="yes")]}, "tools[0].function.strict", "invalid_type"),
        ({"tools": [fn("a", parameters="object")]}, "tools[0].function.parameters", "invalid_schema"),
        ({"tools": [fn("a", parameters={"$ref": "#/nowhere"})]}, "tools[0].function.parameters", "invalid_schema"),
        (
            {"tools": [fn("a", parameters={"properties": {"p": {"pattern": "(?!x)"}}})]},
            "tools[0].function.parameters",
            "invalid_schema",
        ),
        ({"tools": [fn("a")], "tool_choice": "sometimes"}, "tool_choice", "unsupported_value"),
        (
            {"tools": [fn("a")], "tool_choice": {"type": "function", "function": {"name": "b"}}},
            "tool_choice",
            "invalid_value",
        ),
        (
            {"tools": [fn("a")], "tool_choice": {"type": "allowed_tools", "allowed_tools": {"tools": []}}},
            "tool_choice",
            "invalid_value",
        ),
        ({"tools": [fn("a")], "parallel_tool_calls": "no"}, "parallel_tool_calls", "invalid_type"),
        ({"functions": [{"name": "f"}], "function_call": {"name": "g"}}, "function_call", "invalid_value"),
        ({"functions": {"name": "f"}}, "functions", "invalid_type"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema", "missing_required_parameter"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"schema": []}}},
            "response_format.json_schema.schema",
            "invalid_schema",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"strict": 1}}},
            "response_format.json_schema.strict",
            "invalid_type",
        ),
    ],
)
def test_refusals(fields: dict[str, Any], param: str, code: str) -> None:
    error = refused(**fields)
    assert (error.param, error.code) == (param, code)


def test_a_refused_pattern_is_named_in_the_message() -> None:
    error = refused(tools=[fn("a", parameters={"properties": {"p": {"pattern": "(\\w)\\1"}}})])
    assert "`tools[0].function.parameters` is not a usable JSON Schema: the `pattern`" in error.message
    assert "backreference" in error.message


def test_response_formats() -> None:
    assert chat(response_format={"type": "json_object"}).output == JsonOutput()
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "thing", "schema": schema, "strict": True}}
    assert chat(response_format=fmt).output == JsonOutput(schema, "thing", strict=True)
    assert chat(response_format={"type": "json_schema", "json_schema": {"name": "any"}}).output == JsonOutput({}, "any")
    assert chat(response_format={"type": "text"}).output is None


def responses(**fields: Any) -> Any:
    return parse_responses_request({"model": "kimi", **fields}, TOKENS)


def test_responses_string_input_and_instructions() -> None:
    parsed = responses(input="Hello", instructions="Be brief.")
    assert parsed.system == (Message("system", "Be brief."),)
    assert parsed.messages == (Message("user", "Hello"),)
    assert parsed.chat.messages == parsed.system + parsed.messages
    assert parsed.echo["instructions"] == "Be brief." and parsed.store


def test_responses_items_become_one_turn_per_role() -> None:
    parsed = responses(
        input=[
            {"role": "developer", "content": [{"type": "input_text", "text": "Rules"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Weather?"}]},
            {"type": "reasoning", "summary": []},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
            {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
            {"type": "function_call", "call_id": "c2", "name": "now", "namespace": "clock", "arguments": ""},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "noon"}]},
            {"type": "web_search_call", "id": "ws_1"},
        ]
    )
    assert parsed.messages == (
        Message("system", "Rules"),
        Message("user", "Weather?"),
        Message(
            "assistant",
            "Checking.",
            tool_calls=(ToolCall("c1", "get_weather", '{"city":"Paris"}'), ToolCall("c2", "clock.now", "{}")),
        ),
        Message("tool", "sunny", tool_call_id="c1"),
        Message("tool", "noon", tool_call_id="c2"),
    )


def test_responses_tools() -> None:
    parsed = responses(
        input="x",
        tools=[
            {"type": "function", "name": "exec_command", "parameters": PARAMS},
            {"type": "namespace", "name": "crm", "description": "CRM", "tools": [{"type": "function", "name": "find"}]},
            {"type": "web_search"},
            {"type": "file_search", "vector_store_ids": ["v"]},
            {"type": "custom", "name": "apply_patch"},
        ],
        tool_choice={"type": "function", "name": "crm.find"},
        parallel_tool_calls=False,
        text={"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True}},
        max_output_tokens=100,
        reasoning={"effort": "high"},
    )
    tools = parsed.chat.tools
    assert [tool.name for tool in tools.tools] == ["exec_command", "crm.find"]
    assert (tools.choice, tools.forced, tools.parallel) == ("function", "crm.find", False)
    assert parsed.namespaced == {"crm.find": ("crm", "find")}
    assert parsed.chat.use_search and parsed.chat.thinking is True and parsed.chat.max_tokens == 100
    assert parsed.chat.output == JsonOutput({"type": "object"}, "out", strict=True)


def test_responses_hosted_tool_choice_means_auto() -> None:
    parsed = responses(input="x", tools=[{"type": "function", "name": "f"}], tool_choice={"type": "web_search"})
    assert parsed.chat.tools.choice == "auto"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"input": 5}, "input"),
        ({"input": []}, "input"),
        ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"input": [{"type": "function_call", "name": "f"}]}, "input[0]"),
        ({"input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
        ({"input": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "input[0].content[0]"),
        ({"input": "x", "conversation": "conv_1"}, "conversation"),
        ({"input": "x", "background": True}, "background"),
        ({"input": "x", "instructions": 5}, "instructions"),
        ({"input": "x", "max_output_tokens": 0}, "max_output_tokens"),
        ({"input": "x", "tools": [{"type": "namespace", "name": "n"}]}, "tools[0]"),
        ({"input": "x", "text": {"format": {"type": "yaml"}}}, "text.format"),
    ],
)
def test_responses_refusals(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        responses(**fields)
    assert caught.value.param == param


def test_responses_attachments_use_the_chat_parts() -> None:
    parsed = responses(
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Look"},
                    {"type": "input_image", "image_url": "https://example.com/a.png"},
                    {"type": "input_file", "file_id": "file-1", "filename": "a.pdf"},
                ],
            }
        ]
    )
    [message] = parsed.messages
    assert [(a.kind, a.value, a.filename) for a in message.attachments] == [
        ("url", "https://example.com/a.png", None),
        ("file_id", "file-1", "a.pdf"),
    ]

"""parse_chat_request: every refusal with its `param` and `code`, and what accepted requests become."""

from __future__ import annotations

from typing import Any

import pytest

from kimi_free_api.api.openai.schemas import parse_chat_request
from kimi_free_api.core.errors import InvalidRequest
from kimi_free_api.core.request import ChatRequest, Message, ToolCall

TOKENS = ("token-a", "token-b")
HI: list[dict[str, Any]] = [{"role": "user", "content": "Hi"}]


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "kimi", "messages": HI, **fields}


def refused(request: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        parse_chat_request(request, TOKENS)
    assert caught.value.status == 400
    assert caught.value.type == "invalid_request_error"
    return caught.value


def one_message(message: dict[str, Any]) -> dict[str, Any]:
    return {"model": "kimi", "messages": [message]}


@pytest.mark.parametrize(
    ("request_body", "param", "code"),
    [
        # the body
        ([], None, "invalid_type"),
        ("hello", None, "invalid_type"),
        (None, None, "invalid_type"),
        # model
        (body(model=5), "model", "invalid_type"),
        (body(model=["kimi"]), "model", "invalid_type"),
        (body(model=""), "model", "invalid_type"),
        (body(model="   "), "model", "invalid_type"),
        # messages
        ({"model": "kimi"}, "messages", "missing_required_parameter"),
        (body(messages=None), "messages", "missing_required_parameter"),
        (body(messages="Hi"), "messages", "invalid_type"),
        (body(messages={"role": "user", "content": "Hi"}), "messages", "invalid_type"),
        (body(messages=[]), "messages", "empty_array"),
        (body(messages=["Hi"]), "messages[0]", "invalid_type"),
        (body(messages=[*HI, None]), "messages[1]", "invalid_type"),
        (
            body(messages=[{"role": "user", "content": "   "}, {"role": "assistant", "content": ""}]),
            "messages",
            "invalid_value",
        ),
        # roles
        (one_message({"role": "robot", "content": "x"}), "messages[0].role", "invalid_value"),
        (one_message({"content": "x"}), "messages[0].role", "invalid_value"),
        (one_message({"role": "User", "content": "x"}), "messages[0].role", "invalid_value"),
        (one_message({"role": 1, "content": "x"}), "messages[0].role", "invalid_value"),
        # names
        (one_message({"role": "user", "content": "x", "name": 5}), "messages[0].name", "invalid_type"),
        # content
        (one_message({"role": "user", "content": None}), "messages[0].content", "invalid_type"),
        (one_message({"role": "user"}), "messages[0].content", "invalid_type"),
        (one_message({"role": "system", "content": None}), "messages[0].content", "invalid_type"),
        (one_message({"role": "user", "content": 5}), "messages[0].content", "invalid_type"),
        (
            one_message({"role": "user", "content": {"type": "text", "text": "x"}}),
            "messages[0].content",
            "invalid_type",
        ),
        (one_message({"role": "user", "content": ["x"]}), "messages[0].content[0]", "invalid_type"),
        # content parts
        (
            one_message(
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "x"}}],
                }
            ),
            "messages[0].content[1]",
            "invalid_attachment_url",
        ),
        (
            one_message({"role": "user", "content": [{"type": "file", "file": {}}]}),
            "messages[0].content[0]",
            "invalid_attachment",
        ),
        (
            one_message({"role": "assistant", "content": [{"type": "image_url", "image_url": {"url": "data:,x"}}]}),
            "messages[0].content[0]",
            "unsupported_content",
        ),
        (
            one_message({"role": "user", "content": [{"type": "input_audio"}]}),
            "messages[0].content[0]",
            "unsupported_content",
        ),
        (
            one_message({"role": "user", "content": [{"type": "video"}]}),
            "messages[0].content[0]",
            "unsupported_content",
        ),
        (
            one_message({"role": "user", "content": [{"text": "no type"}]}),
            "messages[0].content[0]",
            "unsupported_content",
        ),
        (
            one_message({"role": "user", "content": [{"type": "text", "text": 5}]}),
            "messages[0].content[0]",
            "unsupported_content",
        ),
        (
            one_message({"role": "user", "content": [{"type": "refusal", "refusal": "no"}]}),
            "messages[0].content[0]",
            "unsupported_content",
        ),
        # tool calls
        (
            one_message({"role": "assistant", "content": "x", "tool_calls": {"id": "c"}}),
            "messages[0].tool_calls",
            "invalid_type",
        ),
        (
            one_message({"role": "assistant", "content": "x", "tool_calls": [{"id": "c", "type": "function"}]}),
            "messages[0].tool_calls[0]",
            "invalid_type",
        ),
        (
            one_message({"role": "assistant", "content": "x", "tool_calls": [{"function": {"name": 3}}]}),
            "messages[0].tool_calls[0]",
            "invalid_type",
        ),
        (
            one_message({"role": "assistant", "content": "x", "tool_calls": ["c"]}),
            "messages[0].tool_calls[0]",
            "invalid_type",
        ),
        # unsupported features
        (body(n=2), "n", "unsupported_value"),
        (body(n=0), "n", "unsupported_value"),
        (body(n="1"), "n", "invalid_type"),
        (body(n=True), "n", "invalid_type"),
        (body(n=1.0), "n", "invalid_type"),
        # tools and JSON output (more in test_tool_schemas.py)
        (body(tools={"type": "function"}), "tools", "invalid_type"),
        (body(tools=[{"type": "custom", "custom": {"name": "f"}}]), "tools[0].type", "unsupported_value"),
        (
            body(functions=[{"name": "f"}], tools=[{"type": "function", "function": {"name": "g"}}]),
            "functions",
            "invalid_value",
        ),
        (body(response_format={"type": "xml"}), "response_format", "invalid_value"),
        (body(response_format="json"), "response_format", "invalid_type"),
        # streaming
        (body(stream="true"), "stream", "invalid_type"),
        (body(stream=1), "stream", "invalid_type"),
        (body(stream=True, stream_options=[]), "stream_options", "invalid_type"),
        (body(stream=True, stream_options={"include_usage": "yes"}), "stream_options.include_usage", "invalid_type"),
        (body(stream=True, stream_options={"include_usage": 1}), "stream_options.include_usage", "invalid_type"),
        # extensions
        (body(conversation_id=123), "conversation_id", "invalid_type"),
        (body(use_search="true"), "use_search", "invalid_type"),
    ],
)
def test_refusals(request_body: Any, param: str | None, code: str) -> None:
    error = refused(request_body)
    assert (error.param, error.code) == (param, code)
    assert error.message


@pytest.mark.parametrize("role", [["user"], {"name": "user"}])
def test_unhashable_role_is_a_400(role: Any) -> None:
    error = refused(one_message({"role": role, "content": "x"}))
    assert (error.param, error.code) == ("messages[0].role", "invalid_value")


def test_minimal_request() -> None:
    assert parse_chat_request({"messages": HI}, TOKENS) == ChatRequest(
        model="kimi", messages=(Message(role="user", content="Hi"),), tokens=TOKENS
    )


def test_full_request() -> None:
    request = parse_chat_request(
        {
            "model": "  kimi-search  ",
            "messages": [
                {"role": "developer", "content": "Be terse."},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                    "name": "ann",
                },
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}}
                    ],
                },
                {"role": "function", "content": "42", "name": "f", "tool_call_id": "call_1"},
                {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]},
            ],
            "stream": True,
            "stream_options": {"include_usage": True},
            "use_search": True,
            "reasoning_effort": "high",
            "conversation_id": "cu93bmos8jdiak73ck1g",
            "temperature": 0.2,
            "max_tokens": 100,
            "stop": ["\n\n"],
            "user": "someone",
        },
        TOKENS,
    )
    assert request == ChatRequest(
        model="kimi-search",
        messages=(
            Message(role="system", content="Be terse."),
            Message(role="user", content="a\nb", name="ann"),
            Message(role="assistant", content="", tool_calls=(ToolCall(id="call_1", name="f", arguments='{"x":1}'),)),
            Message(role="tool", content="42", name="f", tool_call_id="call_1"),
            Message(role="assistant", content="No."),
        ),
        tokens=TOKENS,
        stream=True,
        include_usage=True,
        use_search=True,
        thinking=True,
        reasoning_effort="high",
        conversation_id="cu93bmos8jdiak73ck1g",
        stop=("\n\n",),
        max_tokens=100,
    )


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"stop": 3}, "stop"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stop": "x" * 257}, "stop"),
        ({"stop": ["\n", "y" * 1000]}, "stop"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_completion_tokens": "9"}, "max_completion_tokens"),
    ],
)
def test_bad_limits_are_400(fields: dict[str, object], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_chat_request(body(**fields), TOKENS)
    assert caught.value.param == param


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    assert parse_chat_request(body(max_tokens=5, max_completion_tokens=9), TOKENS).max_tokens == 9


def test_null_optional_fields_are_accepted() -> None:
    request = parse_chat_request(
        body(
            model=None,
            stream=None,
            stream_options=None,
            n=None,
            tools=None,
            functions=None,
            response_format=None,
            conversation_id=None,
            use_search=None,
            reasoning_effort=None,
            thinking=None,
        ),
        TOKENS,
    )
    assert request == ChatRequest(model="kimi", messages=(Message(role="user", content="Hi"),), tokens=TOKENS)


def test_harmless_values_of_unsupported_fields_are_accepted() -> None:
    extras: list[dict[str, Any]] = [
        {"n": 1},
        {"tools": []},
        {"functions": []},
        {"response_format": {"type": "text"}},
        {"response_format": {}},
    ]
    for extra in extras:
        assert parse_chat_request(body(**extra), TOKENS).model == "kimi"


@pytest.mark.parametrize("role", ["assistant", "tool"])
def test_null_content_is_allowed_for_assistant_and_tool(role: str) -> None:
    request = parse_chat_request(body(messages=[*HI, {"role": role, "content": None}]), TOKENS)
    assert request.messages[1].content == ""


def test_empty_name_becomes_none_and_non_string_tool_call_id_is_dropped() -> None:
    request = parse_chat_request(
        body(
            messages=[{"role": "user", "content": "x", "name": ""}, {"role": "tool", "content": "r", "tool_call_id": 7}]
        ),
        TOKENS,
    )
    assert request.messages[0].name is None
    assert request.messages[1].tool_call_id is None


@pytest.mark.parametrize("arguments", ["", "null", " null ", "  ", None, {"x": 1}, 5])
def test_argument_less_tool_calls_get_an_empty_object(arguments: Any) -> None:
    function: dict[str, Any] = {"name": "f"}
    if arguments is not None:
        function["arguments"] = arguments
    request = parse_chat_request(
        body(messages=[{"role": "assistant", "content": None, "tool_calls": [{"id": "c", "function": function}]}]),
        TOKENS,
    )
    assert request.messages[0].tool_calls == (ToolCall(id="c", name="f", arguments="{}"),)


def test_tool_call_without_id() -> None:
    message = {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}
    request = parse_chat_request(body(messages=[message]), TOKENS)
    assert request.messages[0].tool_calls == (ToolCall(id="", name="f", arguments="{}"),)


def test_tool_calls_on_other_roles_are_ignored() -> None:
    request = parse_chat_request(body(messages=[{"role": "user", "content": "x", "tool_calls": "junk"}]), TOKENS)
    assert request.messages[0].tool_calls == ()


def test_assistant_with_only_tool_calls_is_not_empty() -> None:
    message = {"role": "assistant", "content": "", "tool_calls": [{"id": "c", "function": {"name": "f"}}]}
    assert len(parse_chat_request(body(messages=[message]), TOKENS).messages) == 1


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, None),
        ({"reasoning_effort": "low"}, True),
        ({"reasoning_effort": "medium"}, True),
        ({"reasoning_effort": "high"}, True),
        ({"reasoning_effort": "xhigh"}, True),
        ({"reasoning_effort": "max"}, True),
        ({"reasoning_effort": "none"}, False),
        ({"reasoning_effort": "minimal"}, False),
        ({"reasoning_effort": "turbo"}, None),
        ({"reasoning_effort": 3}, None),
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, True),
        ({"thinking": {"type": "disabled"}}, False),
        ({"thinking": {"type": "disabled"}, "reasoning_effort": "high"}, False),
        ({"thinking": {"type": "enabled"}, "reasoning_effort": "none"}, True),
        ({"thinking": {"type": "auto"}, "reasoning_effort": "low"}, True),
        ({"thinking": True}, None),
        ({"thinking": "enabled"}, None),
    ],
)
def test_thinking_mapping(fields: dict[str, Any], expected: bool | None) -> None:
    assert parse_chat_request(body(**fields), TOKENS).thinking is expected


@pytest.mark.parametrize(
    ("fields", "stream", "include_usage"),
    [
        ({}, False, False),
        ({"stream": True}, True, False),
        ({"stream": True, "stream_options": {}}, True, False),
        ({"stream": True, "stream_options": {"include_usage": True}}, True, True),
        ({"stream": True, "stream_options": {"include_usage": False}}, True, False),
        ({"stream": False, "stream_options": {"include_usage": True}}, False, False),
        ({"stream_options": {"include_usage": True}}, False, False),
        ({"stream": True, "stream_options": {"include_usage": None}}, True, False),
    ],
)
def test_include_usage_only_when_streaming(fields: dict[str, Any], stream: bool, include_usage: bool) -> None:
    request = parse_chat_request(body(**fields), TOKENS)
    assert (request.stream, request.include_usage) == (stream, include_usage)

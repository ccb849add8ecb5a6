"""parse_messages_request: Anthropic bodies → ChatRequest (blocks, tools, thinking, limits), every refusal with its
`param`, and the Anthropic error types the core's failures map to."""

from __future__ import annotations

from typing import Any

import pytest

from kimi_free_api.api.anthropic.errors import status_and_type
from kimi_free_api.api.anthropic.request import parse_messages_request
from kimi_free_api.core.errors import (
    ContentFiltered,
    GatewayError,
    InvalidRequest,
    ModelNotFound,
    QuotaExceeded,
    RateLimited,
    Unauthorized,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from kimi_free_api.core.request import AttachmentRef, ChatRequest, Message, ToolCall

HI: Any = [{"role": "user", "content": "Hi"}]


def parsed(**fields: Any) -> ChatRequest:
    return parse_messages_request({"model": "kimi", "max_tokens": 100, "messages": HI, **fields}, ("token",))


def refused(**fields: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        parsed(**fields)
    return caught.value


def test_a_plain_request() -> None:
    chat = parsed(temperature=0.2, top_p=0.9, top_k=5, metadata={"user_id": "u"}, context_management={"edits": []})
    assert chat.messages == (Message("user", "Hi"),)
    assert (chat.model, chat.max_tokens, chat.stream, chat.thinking, chat.tools, chat.tokens) == (
        "kimi",
        100,
        False,
        None,
        None,
        ("token",),
    )


def test_system_string_blocks_and_system_messages() -> None:
    assert parsed(system="Be terse.").messages[0] == Message("system", "Be terse.")
    blocks = [
        {"type": "text", "text": "One.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Two."},
    ]
    assert parsed(system=blocks).messages[0] == Message("system", "One.\n\nTwo.")
    inline = parsed(messages=[{"role": "system", "content": "Inline."}, *HI]).messages
    assert inline == (Message("system", "Inline."), Message("user", "Hi"))


def test_tool_use_and_tool_result_blocks() -> None:
    messages = [
        *HI,
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "…", "signature": "sig"},
                {"type": "redacted_thinking", "data": "xyz"},
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_a", "name": "f", "input": {"x": 1}},
                {"type": "tool_use", "id": "toolu_b", "name": "g", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_a", "content": "one"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_b",
                    "is_error": True,
                    "content": [{"type": "text", "text": "boom"}],
                },
                {"type": "text", "text": "Now answer."},
            ],
        },
    ]
    chat = parsed(messages=messages)
    assert chat.messages[1:] == (
        Message(
            "assistant",
            "Let me check.",
            tool_calls=(ToolCall("toolu_a", "f", '{"x":1}'), ToolCall("toolu_b", "g", "{}")),
        ),
        Message("tool", "one", tool_call_id="toolu_a"),
        Message("tool", "[the tool reported an error]\nboom", tool_call_id="toolu_b"),
        Message("user", "Now answer."),
    )


def test_attachment_sources() -> None:
    content = [
        {"type": "text", "text": "See:"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
        {"type": "document", "title": "a.txt", "source": {"type": "text", "media_type": "text/plain", "data": "hi"}},
        {"type": "document", "source": {"type": "file", "file_id": "file-123"}},
        {"type": "text", "text": "Thanks."},
    ]
    [message] = parsed(messages=[{"role": "user", "content": content}]).messages
    at = "messages[0].content"
    assert message.content == "See:\nThanks."
    assert message.attachments == (
        AttachmentRef("url", "data:image/png;base64,iVBORw0KGgo=", None, f"{at}[1]", 4),
        AttachmentRef("url", "https://example.com/a.png", None, f"{at}[2]", 4),
        AttachmentRef("url", "data:text/plain;base64,aGk=", "a.txt", f"{at}[3]", 4),
        AttachmentRef("file_id", "file-123", None, f"{at}[4]", 4),
    )


def test_tools_and_tool_choice() -> None:
    tools = [
        {
            "name": "f",
            "description": "does f",
            "input_schema": {"type": "object"},
            "cache_control": {"type": "ephemeral"},
        },
        {"type": "custom", "name": "g", "input_schema": {"type": "object"}, "defer_loading": True},
        {"type": "bash_20250124", "name": "bash"},
    ]
    chat = parsed(tools=tools)
    assert chat.tools is not None and [t.name for t in chat.tools.tools] == ["f", "g"]
    assert (chat.tools.choice, chat.tools.parallel, chat.use_search) == ("auto", True, False)
    forced = parsed(tools=tools, tool_choice={"type": "tool", "name": "g", "disable_parallel_tool_use": True}).tools
    assert forced is not None and (forced.choice, forced.forced, forced.parallel) == ("function", "g", False)
    assert parsed(tools=tools, tool_choice={"type": "any"}).tools.choice == "required"  # type: ignore[union-attr]
    assert parsed(tools=tools, tool_choice={"type": "none"}).tools.choice == "none"  # type: ignore[union-attr]
    assert parsed(tools=[{"type": "web_search_20250305", "name": "web_search"}]).use_search


@pytest.mark.parametrize(
    ("thinking", "expected"),
    [({"type": "enabled", "budget_tokens": 2048}, True), ({"type": "adaptive"}, None), ({"type": "disabled"}, False)],
)
def test_thinking(thinking: Any, expected: bool | None) -> None:
    assert parsed(thinking=thinking).thinking is expected


def test_limits_and_output_format() -> None:
    chat = parsed(stop_sequences=["a", "b", "c", "d", "e"], stream=True)
    assert chat.stop == ("a", "b", "c", "d", "e") and chat.stream
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    output = parsed(output_config={"effort": "high", "format": {"type": "json_schema", "schema": schema}}).output
    assert output is not None and output.schema == schema
    counted = parse_messages_request({"model": "kimi", "messages": HI, "stream": True}, (), counting=True)
    assert counted.max_tokens is None and not counted.stream  # count_tokens bodies have no max_tokens


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"max_tokens": None}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"model": ""}, "model"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": [{"type": "video"}]}]}, "messages[0].content[0]"),
        ({"messages": [{"role": "user", "content": [{"type": "image"}]}]}, "messages[0].content[0].source"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "url"}}]}]},
            "messages[0].content[0].source.url",
        ),
        ({"messages": [{"role": "user", "content": [{"type": "tool_result"}]}]}, "messages[0].content[0].tool_use_id"),
        (
            {"messages": [{"role": "assistant", "content": [{"type": "tool_use", "name": "f"}]}]},
            "messages[0].content[0]",
        ),
        ({"system": [{"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]}, "system"),
        ({"temperature": "hot"}, "temperature"),
        ({"stop_sequences": "END"}, "stop_sequences"),
        ({"thinking": {"type": "enabled", "budget_tokens": 0}}, "thinking.budget_tokens"),
        ({"tools": [{"name": "bad name!", "input_schema": {}}]}, "tools[0].name"),
        ({"tools": [{"name": "f"}]}, "tools[0].input_schema"),
        ({"tools": [{"name": "f", "input_schema": {"$ref": "#/nowhere"}}]}, "tools[0].input_schema"),
        ({"tools": [{"name": "f", "input_schema": {}}], "tool_choice": {"type": "tool", "name": "g"}}, "tool_choice"),
        ({"tools": [{"name": "f", "input_schema": {}}], "tool_choice": "auto"}, "tool_choice"),
        ({"output_config": {"format": {"type": "json_schema"}}}, "output_config.format"),
    ],
)
def test_refusals_name_the_field(fields: dict[str, Any], param: str) -> None:
    assert refused(**fields).param == param


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        (InvalidRequest("x"), 400, "invalid_request_error"),
        (ContentFiltered("x"), 400, "invalid_request_error"),
        (Unauthorized("x"), 401, "authentication_error"),
        (ModelNotFound("x"), 404, "not_found_error"),
        (RateLimited("x"), 429, "rate_limit_error"),
        (QuotaExceeded("x"), 429, "rate_limit_error"),
        (UpstreamError("x"), 502, "api_error"),
        (UpstreamTimeout("x"), 504, "api_error"),
        (UpstreamUnavailable("x"), 529, "overloaded_error"),
        (RateLimited("x", code="server_overloaded"), 529, "overloaded_error"),
        (GatewayError("x"), 500, "api_error"),
    ],
)
def test_error_types(error: GatewayError, status: int, kind: str) -> None:
    assert status_and_type(error) == (status, kind)

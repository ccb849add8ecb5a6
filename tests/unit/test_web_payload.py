"""The G3 Chat request body and the end-of-stream trailer."""

from __future__ import annotations

import orjson
import pytest

from kimi_free_api.config import Settings
from kimi_free_api.core.errors import (
    AccountBusy,
    ChatNotFound,
    GatewayError,
    NotFound,
    RateLimited,
    Unauthorized,
    UpstreamError,
    UpstreamUnavailable,
)
from kimi_free_api.core.ports import UpstreamChat
from kimi_free_api.upstream.connect import FLAG_COMPRESSED, FLAG_END_STREAM, FLAG_TRAILERS
from kimi_free_api.upstream.errors import trailer_error
from kimi_free_api.upstream.web import chat_payload

SETTINGS = Settings()


def test_plain_payload() -> None:
    assert chat_payload(UpstreamChat(prompt="Hi"), SETTINGS) == {
        "scenario": "SCENARIO_K2D5",
        "tools": [],
        "message": {
            "role": "user",
            "blocks": [{"message_id": "", "text": {"content": "Hi"}}],
            "scenario": "SCENARIO_K2D5",
        },
        "options": {"thinking": False},
    }


def test_search_adds_the_search_tool() -> None:
    payload = chat_payload(UpstreamChat(prompt="q", search=True), SETTINGS)
    assert payload["tools"] == [{"type": "TOOL_TYPE_SEARCH", "search": {}}]


def test_thinking_option() -> None:
    assert chat_payload(UpstreamChat(prompt="q", thinking=True), SETTINGS)["options"] == {"thinking": True}


def test_research_is_the_deep_researcher_agent() -> None:
    # Evidence row 37 / P6: the deep-researcher kimiplus on SCENARIO_OK_COMPUTER, search plus ask-user tools.
    payload = chat_payload(UpstreamChat(prompt="q", research=True), SETTINGS)
    assert payload["scenario"] == payload["message"]["scenario"] == "SCENARIO_OK_COMPUTER"
    assert payload["kimiplus_id"] == "deep-researcher"
    assert payload["tools"] == [{"type": "TOOL_TYPE_SEARCH", "search": {}}, {"type": "TOOL_TYPE_ASK_USER"}]
    assert payload["options"] == {"thinking": False, "enable_plugin": True}
    assert "kimiplus_id" not in chat_payload(UpstreamChat(prompt="q"), SETTINGS)


def test_research_with_the_older_scenario_setting() -> None:
    custom = Settings(kimi_research_scenario="SCENARIO_RESEARCH", kimi_research_agent="", kimi_scenario="SCENARIO_K2")
    payload = chat_payload(UpstreamChat(prompt="q", research=True), custom)
    assert payload["scenario"] == "SCENARIO_RESEARCH"
    assert "kimiplus_id" not in payload and payload["tools"] == [] and payload["options"] == {"thinking": False}
    assert chat_payload(UpstreamChat(prompt="q"), custom)["scenario"] == "SCENARIO_K2"


def test_an_explicit_agent_wins_over_the_research_agent() -> None:
    payload = chat_payload(UpstreamChat(prompt="q", research=True, agent_id="ok-computer"), SETTINGS)
    assert payload["kimiplusId"] == "ok-computer" and "kimiplus_id" not in payload


def test_explicit_scenario_wins_over_research_and_settings() -> None:
    payload = chat_payload(UpstreamChat(prompt="q", research=True, scenario="SCENARIO_OK_COMPUTER"), SETTINGS)
    assert payload["scenario"] == payload["message"]["scenario"] == "SCENARIO_OK_COMPUTER"


def test_chat_id_agent_id_and_agent_mode() -> None:
    request = UpstreamChat(
        prompt="q", chat_id="cu93bmos8jdiak73ck1g", agent_id="crm40ee9e5jvhsn7ptcg", agent_mode="TYPE_ULTRA"
    )
    payload = chat_payload(request, SETTINGS)
    assert payload["chat_id"] == "cu93bmos8jdiak73ck1g"
    assert payload["kimiplusId"] == "crm40ee9e5jvhsn7ptcg"
    assert payload["agentMode"] == "TYPE_ULTRA"


def test_optional_keys_are_absent_when_empty() -> None:
    payload = chat_payload(UpstreamChat(prompt="q"), SETTINGS)
    assert not {"chat_id", "kimiplusId", "agentMode"} & set(payload)


def test_prompt_is_sent_verbatim_and_serialises() -> None:
    prompt = 'line 1\n"quoted" <user>\u2028 你好 🌏'
    payload = chat_payload(UpstreamChat(prompt=prompt, search=True), SETTINGS)
    assert orjson.loads(orjson.dumps(payload))["message"]["blocks"][0]["text"]["content"] == prompt


# --- trailers ---


@pytest.mark.parametrize(
    "message",
    [b"", b"   ", b"{}", b'{"metadata":{"x-request-id":["abc"]}}', b'{"error":null}', b'{"error":{}}', b"[]"],
)
def test_connect_trailer_without_error(message: bytes) -> None:
    assert trailer_error(FLAG_END_STREAM, message) is None


@pytest.mark.parametrize(
    ("error", "cls"),
    [
        ({"code": "resource_exhausted", "message": "chat.user_stream_pushing"}, AccountBusy),
        ({"code": "unauthenticated", "message": "expired"}, Unauthorized),
        ({"code": "not_found", "message": "no chat"}, ChatNotFound),
        ({"code": "unavailable", "message": "later"}, UpstreamUnavailable),
        ({"code": "internal", "message": "boom", "details": [{"type": "x", "value": "y"}]}, UpstreamError),
    ],
)
def test_connect_trailer_with_error(error: dict[str, object], cls: type[GatewayError]) -> None:
    message = orjson.dumps({"error": error, "metadata": {}})
    result = trailer_error(FLAG_END_STREAM, message)
    assert type(result) is cls
    # A compressed end-stream envelope arrives already decompressed, flags and all.
    assert type(trailer_error(FLAG_END_STREAM | FLAG_COMPRESSED, message)) is cls


def test_connect_trailer_that_is_not_json() -> None:
    result = trailer_error(FLAG_END_STREAM, b"<html>")
    assert type(result) is UpstreamError
    assert result.message == "Kimi ended the stream with an unreadable trailer"


@pytest.mark.parametrize(
    "message",
    [b"", b"grpc-status: 0\r\ngrpc-message: \r\n", b"grpc-status:0", b"grpc-message: fine\r\n", b"grpc-status: \r\n"],
)
def test_grpc_web_trailer_without_error(message: bytes) -> None:
    assert trailer_error(FLAG_TRAILERS, message) is None


def test_grpc_web_trailer_with_error() -> None:
    result = trailer_error(FLAG_TRAILERS, b"grpc-status: 13\r\ngrpc-message: boom\r\n")
    assert type(result) is UpstreamError
    assert result.message == "Kimi failed: boom"
    bare = trailer_error(FLAG_TRAILERS, b"grpc-status:2\n")
    assert bare is not None
    assert bare.message == "Kimi failed: grpc-status 2"


def test_grpc_web_trailer_reason_in_message() -> None:
    result = trailer_error(
        FLAG_TRAILERS | FLAG_END_STREAM, b"grpc-status: 9\r\ngrpc-message: chat.user_stream_pushing\r\n"
    )
    assert type(result) is AccountBusy


@pytest.mark.parametrize(
    ("status", "cls"),
    [("16", Unauthorized), ("8", RateLimited), ("14", UpstreamUnavailable), ("5", NotFound)],
)
def test_grpc_web_trailer_is_classified_by_status(status: str, cls: type[GatewayError]) -> None:
    result = trailer_error(FLAG_TRAILERS, f"grpc-status: {status}\r\ngrpc-message: failed\r\n".encode())
    assert isinstance(result, cls)

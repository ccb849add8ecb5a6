"""Validating `POST /v1/messages` (and `count_tokens`) bodies into the core's `ChatRequest`.

Honoured: `model`, `messages`, `system`, `max_tokens`, `stop_sequences`, `stream`, `tools`, `tool_choice`,
`thinking` (`enabled` and `disabled` turn Kimi's thinking on and off; `adaptive` leaves it to the model name, as
"let the model decide" means here), and `output_config.format` / `output_format` (a JSON schema the answer must
match). Accepted without effect: `temperature`, `top_p`, `top_k` (Kimi's web chat takes no sampling settings; their
types are still checked), `thinking.budget_tokens`, `metadata`, `output_config.effort`, `context_management`,
`service_tier`, `container`, `mcp_servers` and every other field. Unknown model names get the usual 404.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kimi_free_api.api.anthropic.blocks import system_text, transcript
from kimi_free_api.api.anthropic.tools import parse_tools
from kimi_free_api.api.fields import fail, optional
from kimi_free_api.api.tool_schemas import json_output
from kimi_free_api.core.request import ChatRequest, Message

_THINKING: dict[str, bool | None] = {"enabled": True, "disabled": False, "adaptive": None}


def _thinking(body: Mapping[str, Any]) -> bool | None:
    thinking = optional(body, "thinking", dict, "an object")
    if thinking is None:
        return None
    kind = thinking.get("type")
    if kind not in _THINKING:
        message = f"`thinking.type` must be enabled, adaptive or disabled; got {kind!r}."
        raise fail(message, "thinking.type", "unsupported_value")
    budget = optional(thinking, "budget_tokens", int, "an integer", "thinking")
    if kind == "enabled" and budget is not None and budget < 1:
        raise fail("`thinking.budget_tokens` must be at least 1.", "thinking.budget_tokens")
    return _THINKING[kind]


def _stop_sequences(body: Mapping[str, Any]) -> tuple[str, ...]:
    stops = body.get("stop_sequences")
    if stops is None:
        return ()
    if not isinstance(stops, list) or not all(isinstance(stop, str) for stop in stops):
        raise fail("`stop_sequences` must be an array of strings.", "stop_sequences", "invalid_type")
    return tuple(stops)


def _max_tokens(body: Mapping[str, Any], required: bool) -> int | None:
    value: int | None = optional(body, "max_tokens", int, "an integer")
    if value is None and required:
        raise fail("`max_tokens` is required.", "max_tokens", "missing_required_parameter")
    if value is not None and value < 1:
        raise fail("`max_tokens` must be at least 1.", "max_tokens")
    return value


def _output_format(body: Mapping[str, Any]) -> Any:
    config = optional(body, "output_config", dict, "an object") or {}
    spec = config.get("format") if config.get("format") is not None else body.get("output_format")
    if isinstance(spec, Mapping) and spec.get("type") == "json_schema" and spec.get("schema") is None:
        raise fail("`output_config.format.schema` is required.", "output_config.format", "missing_required_parameter")
    return spec


def parse_messages_request(body: Any, tokens: tuple[str, ...], *, counting: bool = False) -> ChatRequest:
    """`counting`: a `count_tokens` body, which has no `max_tokens`."""
    if not isinstance(body, dict):
        raise fail("The request body must be a JSON object.", None, "invalid_type")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise fail("`model` is required: a non-empty string.", "model", "missing_required_parameter")
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise fail("`messages` must be a non-empty array of messages.", "messages", "invalid_type")
    system = system_text(body.get("system"))
    messages = ([Message("system", system)] if system else []) + transcript(raw_messages)
    if not any(m.content.strip() or m.tool_calls or m.attachments for m in messages):
        raise fail("Every message is empty: there is nothing to send to Kimi.", "messages")
    for key in ("temperature", "top_p", "top_k"):
        optional(body, key, (int, float), "a number")
    optional(body, "metadata", dict, "an object")
    tools = parse_tools(body)
    return ChatRequest(
        model=model.strip(),
        messages=tuple(messages),
        tokens=tokens,
        stream=bool(optional(body, "stream", bool, "a boolean")) and not counting,
        use_search=tools.search,
        thinking=_thinking(body),
        stop=_stop_sequences(body),
        max_tokens=_max_tokens(body, required=not counting),
        tools=tools.tools,
        output=json_output(_output_format(body), "output_config.format", flat=True),
    )

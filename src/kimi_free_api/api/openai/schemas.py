"""Validating OpenAI chat-completion requests into the core's `ChatRequest`.

Unknown fields are ignored (clients send many vendor extras), but a field the gateway cannot honour and that the
caller relies on is refused with a 400 naming it, rather than dropped in silence.
"""

from __future__ import annotations

from typing import Any

from kimi_free_api.api.fields import fail, message_role, optional
from kimi_free_api.api.parts import ATTACHMENT_PARTS, attachment_ref
from kimi_free_api.api.tool_schemas import chat_tool_set, json_output
from kimi_free_api.core.models.modelspec import DEFAULT_MODEL
from kimi_free_api.core.request import AttachmentRef, ChatRequest, Message, Role, ToolCall

_ROLES: dict[str, Role] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",
}
_THINKING_EFFORTS = frozenset({"low", "medium", "high", "xhigh", "max"})
_NO_THINKING_EFFORTS = frozenset({"none", "minimal"})


def _content(content: Any, where: str, role: Role) -> tuple[str, tuple[AttachmentRef, ...]]:
    """The text of a message (text parts joined by newlines) and its attachments, each placed in the text."""
    if isinstance(content, str):
        return content, ()
    if content is None:
        if role in ("assistant", "tool"):
            return "", ()
        raise fail(f"`{where}` must not be null for a {role} message.", where, "invalid_type")
    if not isinstance(content, list):
        raise fail(f"`{where}` must be a string or an array of content parts.", where, "invalid_type")
    texts: list[str] = []
    attachments: list[AttachmentRef] = []
    length = 0  # of "\n".join(texts)
    for index, part in enumerate(content):
        at = f"{where}[{index}]"
        if not isinstance(part, dict):
            raise fail(f"`{at}` must be an object with a `type`.", at, "invalid_type")
        kind = part.get("type")
        if not isinstance(kind, str | None):  # a list or object would not even be hashable below
            raise fail(f"`{at}.type` must be a string naming the part's kind.", at, "unsupported_content")
        text = part.get("text") if kind == "text" else part.get("refusal") if kind == "refusal" else None
        if isinstance(text, str) and (kind == "text" or role == "assistant"):
            length += len(text) + (1 if texts else 0)
            texts.append(text)
        elif kind in ATTACHMENT_PARTS and role == "user":
            attachments.append(attachment_ref(part, at, length))
        elif kind in (*ATTACHMENT_PARTS, "input_audio"):
            raise fail(
                f"`{at}` is a `{kind}` part; attachments are accepted in user messages only, and audio not at all.",
                at,
                "unsupported_content",
            )
        else:
            raise fail(f"`{at}` has an unsupported content part type {kind!r}.", at, "unsupported_content")
    return "\n".join(texts), tuple(attachments)


def _tool_calls(value: Any, where: str) -> tuple[ToolCall, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise fail(f"`{where}` must be an array.", where, "invalid_type")
    calls: list[ToolCall] = []
    for index, call in enumerate(value):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise fail(f"`{where}[{index}].function.name` is required.", f"{where}[{index}]", "invalid_type")
        arguments = function.get("arguments")
        # Clients send "", "null" or nothing for argument-less calls.
        if not isinstance(arguments, str) or arguments.strip() in ("", "null"):
            arguments = "{}"
        calls.append(ToolCall(id=str(call.get("id") or ""), name=function["name"], arguments=arguments))
    return tuple(calls)


def _assistant_calls(raw: dict[str, Any], where: str) -> tuple[ToolCall, ...]:
    legacy = raw.get("function_call")  # the deprecated single call
    if not raw.get("tool_calls") and isinstance(legacy, dict):
        return _tool_calls([{"function": legacy}], f"{where}.function_call")
    return _tool_calls(raw.get("tool_calls"), f"{where}.tool_calls")


def _message(raw: Any, index: int) -> Message:
    where = f"messages[{index}]"
    role = message_role(raw, where, _ROLES, f"one of {', '.join(sorted(_ROLES))}")
    name = optional(raw, "name", str, "a string", where)
    tool_call_id = raw.get("tool_call_id")
    content, attachments = _content(raw.get("content"), f"{where}.content", role)
    return Message(
        role=role,
        content=content,
        attachments=attachments,
        name=name or None,
        tool_calls=_assistant_calls(raw, where) if role == "assistant" else (),
        tool_call_id=tool_call_id if isinstance(tool_call_id, str) else None,
    )


def _thinking(body: dict[str, Any]) -> bool | None:
    effort = body.get("reasoning_effort")
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "disabled"):
        return bool(thinking["type"] == "enabled")
    if isinstance(effort, str):
        if effort in _THINKING_EFFORTS:
            return True
        if effort in _NO_THINKING_EFFORTS:
            return False
    return None


def _effort(body: dict[str, Any]) -> str | None:
    effort = body.get("reasoning_effort")
    return effort if effort in _THINKING_EFFORTS or effort in _NO_THINKING_EFFORTS else None


def _refuse_unsupported(body: dict[str, Any]) -> None:
    n = optional(body, "n", int, "an integer")
    if n is not None and n != 1:
        raise fail("Only `n: 1` is supported: Kimi answers once per request.", "n", "unsupported_value")


# A stop sequence is a short marker ("\n\n", "Observation:"); while streaming, the gateway holds back and rechecks
# up to this many characters of every delta (core/limits.py), so the cost per delta is bounded by it, squared.
MAX_STOP_LENGTH = 256


def _stop(body: dict[str, Any]) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    stops = (stop,) if isinstance(stop, str) else stop
    if not isinstance(stops, list) or len(stops) > 4 or not all(isinstance(s, str) for s in stops):
        raise fail("`stop` must be a string or an array of at most 4 strings.", "stop", "invalid_type")
    for s in stops:
        if len(s) > MAX_STOP_LENGTH:
            raise fail(f"A `stop` sequence may be at most {MAX_STOP_LENGTH} characters; got {len(s)}.", "stop")
    return tuple(stops)


def _max_tokens(body: dict[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        value = optional(body, key, int, "an integer")
        if value is not None:
            if value < 1:
                raise fail(f"`{key}` must be at least 1.", key)
            return int(value)
    return None


def parse_chat_request(body: Any, tokens: tuple[str, ...]) -> ChatRequest:
    if not isinstance(body, dict):
        raise fail("The request body must be a JSON object.", None, "invalid_type")
    model = body.get("model")
    if model is None:
        model = DEFAULT_MODEL
    if not isinstance(model, str) or not model.strip():
        raise fail("`model` must be a non-empty string.", "model", "invalid_type")
    raw_messages = body.get("messages")
    if raw_messages is None:
        raise fail("`messages` is required.", "messages", "missing_required_parameter")
    if not isinstance(raw_messages, list):
        raise fail("`messages` must be an array of messages.", "messages", "invalid_type")
    if not raw_messages:
        raise fail("`messages` must contain at least one message.", "messages", "empty_array")
    messages = tuple(_message(raw, index) for index, raw in enumerate(raw_messages))
    if not any(m.content.strip() or m.tool_calls or m.attachments for m in messages):
        raise fail("Every message is empty: there is nothing to send to Kimi.", "messages")
    stream = bool(optional(body, "stream", bool, "a boolean"))
    options = optional(body, "stream_options", dict, "an object") or {}
    include_usage = optional(options, "include_usage", bool, "a boolean", "stream_options")
    _refuse_unsupported(body)
    conversation_id = optional(body, "conversation_id", str, "a string")
    return ChatRequest(
        model=model.strip(),
        messages=messages,
        tokens=tokens,
        stream=stream,
        include_usage=bool(include_usage) and stream,
        use_search=bool(optional(body, "use_search", bool, "a boolean")),
        thinking=_thinking(body),
        reasoning_effort=_effort(body),
        conversation_id=conversation_id,
        stop=_stop(body),
        max_tokens=_max_tokens(body),
        tools=chat_tool_set(body),
        output=json_output(body.get("response_format"), "response_format", flat=False),
    )

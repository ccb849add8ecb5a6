"""Validating `POST /v1/responses` bodies (OpenAI's Responses API) into the core's `ChatRequest`.

Input items become messages: message items (with `input_text` / `output_text` parts, images and files as
attachments), `function_call` items as the assistant's tool calls (joined to the assistant message before them, as
the Responses API splits one turn into items), `function_call_output` items as tool results. Reasoning items and
item types this gateway has no use for are skipped. Function tools are flat; tools inside a `namespace` (Codex)
are offered as `namespace.name`. `web_search` turns on Kimi's own web search; other hosted tools (file search, code
interpreter, MCP, …) are accepted and not offered, since nothing here could run them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kimi_free_api.api.fields import fail, optional
from kimi_free_api.api.parts import attachment_ref
from kimi_free_api.api.tool_schemas import function_tool, json_output, tool_set, unique
from kimi_free_api.core.guided.tools import FunctionTool
from kimi_free_api.core.models.modelspec import DEFAULT_MODEL
from kimi_free_api.core.request import AttachmentRef, ChatRequest, Message, Role, ToolCall

_ROLES: dict[str, Role] = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
_TEXT_PARTS = frozenset({"input_text", "output_text", "text", "summary_text", "reasoning_text"})
_THINKING = {"low": True, "medium": True, "high": True, "xhigh": True, "max": True, "none": False, "minimal": False}


@dataclass(slots=True)
class ResponsesRequest:
    chat: ChatRequest
    # What the response object echoes back.
    echo: dict[str, Any]
    store: bool
    previous_response_id: str | None
    # `instructions` as a system message, and the input items as messages (what a stored response keeps).
    system: tuple[Message, ...]
    messages: tuple[Message, ...]
    # Tool names offered to Kimi → (namespace, name) for tools inside a namespace.
    namespaced: dict[str, tuple[str, str]] = field(default_factory=dict)


def _chat_part(part: Mapping[str, Any]) -> dict[str, Any]:
    """An `input_image` / `input_file` part in the chat shape that api/parts.py reads."""
    if part.get("type") == "input_image" and isinstance(part.get("image_url"), str):
        return {"type": "image_url", "image_url": {"url": part["image_url"]}}
    if part.get("type") == "input_file" and isinstance(part.get("file_url"), str):
        return {"type": "file", "file_url": {"url": part["file_url"]}}
    keys = ("file_id", "file_data", "filename")
    return {"type": "file", "file": {key: part[key] for key in keys if key in part}}


def _content(content: Any, where: str, role: Role) -> tuple[str, tuple[AttachmentRef, ...]]:
    if isinstance(content, str):
        return content, ()
    if not isinstance(content, list):
        raise fail(f"`{where}` must be a string or an array of content parts.", where, "invalid_type")
    texts: list[str] = []
    attachments: list[AttachmentRef] = []
    length = 0  # of "\n".join(texts): where an attachment sits in the text
    for index, part in enumerate(content):
        at = f"{where}[{index}]"
        if not isinstance(part, Mapping):
            raise fail(f"`{at}` must be an object with a `type`.", at, "invalid_type")
        kind = part.get("type")
        text = part.get("refusal") if kind == "refusal" else part.get("text")
        if (kind in _TEXT_PARTS or kind == "refusal") and isinstance(text, str):
            length += len(text) + (1 if texts else 0)
            texts.append(text)
        elif kind in ("input_image", "input_file") and role == "user":
            attachments.append(attachment_ref(_chat_part(part), at, length))
        else:
            raise fail(f"`{at}` has an unsupported content part type {kind!r}.", at, "unsupported_content")
    return "\n".join(texts), tuple(attachments)


def _output_text(output: Any, where: str) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return _content(output, where, "tool")[0]
    raise fail(f"`{where}` must be a string or an array of content parts.", where, "invalid_type")


def _qualified(item: Mapping[str, Any]) -> str:
    name, namespace = item.get("name"), item.get("namespace")
    return f"{namespace}.{name}" if isinstance(namespace, str) and namespace else str(name)


class _Transcript:
    """Builds messages from items, joining an assistant message and the calls that follow it into one turn."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def add_message(self, item: Mapping[str, Any], where: str) -> None:
        raw_role = item.get("role")
        role = _ROLES.get(raw_role) if isinstance(raw_role, str) else None
        if role is None:
            raise fail(f"`{where}.role` must be user, assistant, system or developer.", f"{where}.role")
        text, attachments = _content(item.get("content"), f"{where}.content", role)
        self.messages.append(Message(role=role, content=text, attachments=attachments))

    def add_call(self, item: Mapping[str, Any], where: str, arguments: Any) -> None:
        call_id = item.get("call_id")
        if not isinstance(call_id, str) or not isinstance(item.get("name"), str):
            raise fail(f"`{where}` needs a `call_id` and a `name`.", where, "missing_required_parameter")
        # Clients send "", "null" or nothing for argument-less calls.
        if not isinstance(arguments, str) or arguments.strip() in ("", "null"):
            arguments = "{}"
        call = ToolCall(id=call_id, name=_qualified(item), arguments=arguments)
        last = self.messages[-1] if self.messages else None
        if last is not None and last.role == "assistant":
            self.messages[-1] = Message("assistant", last.content, last.name, (*last.tool_calls, call))
        else:
            self.messages.append(Message("assistant", "", tool_calls=(call,)))

    def add_output(self, item: Mapping[str, Any], where: str) -> None:
        call_id = item.get("call_id")
        if not isinstance(call_id, str):
            raise fail(f"`{where}.call_id` is required.", f"{where}.call_id", "missing_required_parameter")
        text = _output_text(item.get("output", ""), f"{where}.output")
        self.messages.append(Message("tool", text, tool_call_id=call_id))


def _messages(raw: Any) -> tuple[Message, ...]:
    if isinstance(raw, str):
        return (Message("user", raw),)
    if not isinstance(raw, list):
        raise fail("`input` must be a string or an array of input items.", "input", "invalid_type")
    transcript = _Transcript()
    for index, item in enumerate(raw):
        where = f"input[{index}]"
        if not isinstance(item, Mapping):
            raise fail(f"`{where}` must be an object.", where, "invalid_type")
        kind = item.get("type", "message")
        if kind == "message":
            transcript.add_message(item, where)
        elif kind == "function_call":
            transcript.add_call(item, where, item.get("arguments"))
        elif kind == "custom_tool_call":
            transcript.add_call(item, where, item.get("input"))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            transcript.add_output(item, where)
        # Anything else (reasoning, item references, hosted tool calls) carries nothing Kimi could use.
    return tuple(transcript.messages)


@dataclass(slots=True)
class _Tools:
    declared: list[FunctionTool] = field(default_factory=list)
    namespaced: dict[str, tuple[str, str]] = field(default_factory=dict)
    search: bool = False


def _tools(raw: Any) -> _Tools:
    found = _Tools()
    if raw is None:
        return found
    if not isinstance(raw, list):
        raise fail("`tools` must be an array.", "tools", "invalid_type")
    for index, entry in enumerate(raw):
        where = f"tools[{index}]"
        if not isinstance(entry, Mapping):
            raise fail(f"`{where}` must be an object.", where, "invalid_type")
        kind = entry.get("type")
        if kind == "function":
            found.declared.append(function_tool(entry, where))
        elif kind == "namespace":
            namespace = entry.get("name")
            inner = entry.get("tools")
            if not isinstance(namespace, str) or not namespace or not isinstance(inner, list):
                raise fail(f"`{where}` needs a `name` and `tools`.", where, "missing_required_parameter")
            for number, spec in enumerate(inner):
                if isinstance(spec, Mapping) and spec.get("type") == "function":
                    tool = function_tool(spec, f"{where}.tools[{number}]", name=f"{namespace}.{spec.get('name')}")
                    found.declared.append(tool)
                    found.namespaced[tool.name] = (namespace, str(spec.get("name")))
        elif isinstance(kind, str) and kind.startswith("web_search"):
            found.search = True
    return found


def _choice(raw: Any) -> Any:
    """Choices of hosted or custom tools mean "use tools as you see fit" here."""
    if isinstance(raw, Mapping) and raw.get("type") not in ("function", "allowed_tools"):
        return "auto"
    return raw


def parse_responses_request(body: Any, tokens: tuple[str, ...]) -> ResponsesRequest:
    if not isinstance(body, dict):
        raise fail("The request body must be a JSON object.", None, "invalid_type")
    model = body.get("model") or DEFAULT_MODEL
    if not isinstance(model, str) or not model.strip():
        raise fail("`model` must be a non-empty string.", "model", "invalid_type")
    for unsupported in ("conversation", "background"):
        if body.get(unsupported):
            raise fail(
                f"`{unsupported}` is not supported by this gateway; chain responses with `previous_response_id`.",
                unsupported,
                "unsupported_parameter",
            )
    instructions = optional(body, "instructions", str, "a string")
    messages = _messages(body.get("input"))
    previous = optional(body, "previous_response_id", str, "a string")
    if not messages and not previous:
        raise fail("`input` must contain at least one item.", "input", "empty_array")
    tools = _tools(body.get("tools"))
    text = optional(body, "text", dict, "an object") or {}
    max_output = optional(body, "max_output_tokens", int, "an integer")
    if max_output is not None and max_output < 1:
        raise fail("`max_output_tokens` must be at least 1.", "max_output_tokens")
    reasoning = optional(body, "reasoning", dict, "an object") or {}
    effort = reasoning.get("effort")
    system = (Message("system", instructions),) if instructions else ()
    chat = ChatRequest(
        model=model.strip(),
        messages=system + messages,
        tokens=tokens,
        stream=bool(optional(body, "stream", bool, "a boolean")),
        use_search=tools.search,
        thinking=_THINKING.get(effort) if isinstance(effort, str) else None,
        reasoning_effort=effort if effort in _THINKING else None,
        max_tokens=max_output,
        tools=tool_set(
            unique(tools.declared, "tools"),
            _choice(body.get("tool_choice")),
            body.get("parallel_tool_calls"),
            flat=True,
        ),
        output=json_output(text.get("format"), "text.format", flat=True),
    )
    echo = {
        "instructions": instructions,
        "max_output_tokens": max_output,
        "metadata": body.get("metadata") if isinstance(body.get("metadata"), dict) else {},
        "parallel_tool_calls": body.get("parallel_tool_calls") is not False,
        "previous_response_id": previous,
        "reasoning": {"effort": effort, "summary": reasoning.get("summary")},
        "temperature": body.get("temperature") if isinstance(body.get("temperature"), int | float) else 1.0,
        "text": {"format": text.get("format") or {"type": "text"}},
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p") if isinstance(body.get("top_p"), int | float) else 1.0,
        "truncation": "disabled",
    }
    return ResponsesRequest(
        chat=chat,
        echo=echo,
        store=body.get("store") is not False,
        previous_response_id=previous,
        system=system,
        messages=messages,
        namespaced=tools.namespaced,
    )

"""Anthropic `messages` (content blocks) → the core's messages.

* `text` blocks join with newlines; blank ones (Claude Code sends some) are skipped.
* `image` and `document` blocks become attachments on the same path as the OpenAI surface's parts (api/parts.py):
  a `base64` source as a data: URL of its `media_type`, a `url` source as the URL, a `file` source by its id, a
  plain-`text` document as a text file named after its `title`, a `content` document as its inner blocks.
* `tool_use` blocks (assistant) are the assistant's tool calls; each `tool_result` block (user) is a tool message
  of its own, in order, with its text and images; `is_error` marks the text as an error report.
* `thinking` and `redacted_thinking` blocks of earlier turns are dropped: Kimi cannot take its thoughts back, and
  their `signature` is never checked. Blocks of Anthropic's server tools (web search results, code execution …) are
  dropped too: nothing here ran them.
* A `system` role inside `messages` (Claude Code since 2.1.154) is a system message where it stands.

`cache_control`, `citations` and any other annotation of a block are ignored.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import orjson

from kimi_free_api.api.fields import fail, message_role
from kimi_free_api.api.parts import attachment_ref
from kimi_free_api.core.request import AttachmentRef, Message, Role, ToolCall

_ROLES: dict[str, Role] = {"user": "user", "assistant": "assistant", "system": "system"}
_DROPPED = frozenset(
    {
        "thinking",
        "redacted_thinking",
        "server_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
        "code_execution_tool_result",
        "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result",
        "tool_search_tool_result",
        "mcp_tool_use",
        "mcp_tool_result",
        "container_upload",
    }
)

# Sources that name where the bytes are: the key that holds the reference.
_REFERENCES = {"url": "url", "file": "file_id"}


def _source_part(block: Mapping[str, Any], at: str) -> dict[str, Any] | None:
    """The block's source in the chat-completions part shape api/parts.py reads; None for a `content` source."""
    source = block.get("source")
    if not isinstance(source, Mapping):
        raise fail(f"`{at}.source` is required.", f"{at}.source", "missing_required_parameter")
    kind = source.get("type")
    title = block.get("title") if isinstance(block.get("title"), str) else None
    image = block.get("type") == "image"
    key = _REFERENCES.get(kind) if isinstance(kind, str) else None
    if key is not None and not isinstance(source.get(key), str):
        raise fail(f"`{at}.source.{key}` must be a string.", f"{at}.source.{key}", "invalid_type")
    if kind == "url":
        url = source["url"]
        return {"type": "image_url", "image_url": {"url": url}} if image else {"type": "file", "file_url": {"url": url}}
    if kind == "base64":
        media_type, data = source.get("media_type"), source.get("data")
        if not isinstance(media_type, str) or not isinstance(data, str):
            raise fail(f"`{at}.source` needs a `media_type` and `data`.", f"{at}.source", "missing_required_parameter")
        return {"type": "file", "file": {"file_data": f"data:{media_type};base64,{data}", "filename": title}}
    if kind == "text" and not image:
        data = source.get("data")
        if not isinstance(data, str):
            raise fail(f"`{at}.source.data` must be a string.", f"{at}.source.data", "invalid_type")
        encoded = base64.b64encode(data.encode()).decode()
        return {"type": "file", "file": {"file_data": f"data:text/plain;base64,{encoded}", "filename": title}}
    if kind == "file":
        return {"type": "file", "file": {"file_id": source["file_id"], "filename": title}}
    if kind == "content" and not image:
        return None
    raise fail(f"`{at}.source.type` {kind!r} is not supported.", f"{at}.source.type", "unsupported_value")


class _Parts:
    """The text and attachments of one message, each attachment placed where it sat among the text."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.attachments: list[AttachmentRef] = []
        self._length = 0  # of "\n".join(texts)

    def text(self, text: str) -> None:
        if text.strip():
            self._length += len(text) + (1 if self.texts else 0)
            self.texts.append(text)

    def add(self, block: Mapping[str, Any], at: str) -> None:
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            if not isinstance(text, str):
                raise fail(f"`{at}.text` must be a string.", f"{at}.text", "invalid_type")
            self.text(text)
        elif kind in ("image", "document"):
            part = _source_part(block, at)
            if part is None:
                self.blocks(block["source"].get("content"), f"{at}.source.content")
            else:
                self.attachments.append(attachment_ref(part, at, self._length))
        elif kind == "search_result":
            title, source = block.get("title"), block.get("source")
            self.text(f"{title} ({source})" if title or source else "")
            self.blocks(block.get("content"), f"{at}.content")
        elif kind not in _DROPPED:
            raise fail(f"`{at}` has an unsupported content block type {kind!r}.", at, "unsupported_content")

    def blocks(self, content: Any, where: str) -> None:
        if isinstance(content, str):
            self.text(content)
            return
        if not isinstance(content, list):
            raise fail(f"`{where}` must be a string or an array of content blocks.", where, "invalid_type")
        for index, block in enumerate(content):
            self.add(_block(block, f"{where}[{index}]"), f"{where}[{index}]")

    @property
    def empty(self) -> bool:
        return not self.texts and not self.attachments

    def message(self, role: Role, **fields: Any) -> Message:
        return Message(role=role, content="\n".join(self.texts), attachments=tuple(self.attachments), **fields)


def _block(block: Any, at: str) -> Mapping[str, Any]:
    if not isinstance(block, Mapping):
        raise fail(f"`{at}` must be an object with a `type`.", at, "invalid_type")
    return block


def _tool_call(block: Mapping[str, Any], at: str) -> ToolCall:
    call_id, name = block.get("id"), block.get("name")
    if not isinstance(call_id, str) or not isinstance(name, str):
        raise fail(f"`{at}` needs an `id` and a `name`.", at, "missing_required_parameter")
    arguments = block.get("input")
    return ToolCall(id=call_id, name=name, arguments=orjson.dumps({} if arguments is None else arguments).decode())


def _tool_result(block: Mapping[str, Any], at: str) -> Message:
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str):
        raise fail(f"`{at}.tool_use_id` is required.", f"{at}.tool_use_id", "missing_required_parameter")
    parts = _Parts()
    if block.get("is_error") is True:
        parts.text("[the tool reported an error]")
    parts.blocks(block.get("content") or "", f"{at}.content")
    return parts.message("tool", tool_call_id=call_id)


def _assistant(content: list[Any], where: str) -> Message:
    parts = _Parts()
    calls: list[ToolCall] = []
    for index, raw in enumerate(content):
        at = f"{where}[{index}]"
        block = _block(raw, at)
        if block.get("type") == "tool_use":
            calls.append(_tool_call(block, at))
        elif block.get("type") in ("image", "document"):
            raise fail(f"`{at}`: attachments are accepted in user messages only.", at, "unsupported_content")
        else:
            parts.add(block, at)
    return Message(role="assistant", content="\n".join(parts.texts), tool_calls=tuple(calls))


def _user(content: list[Any], where: str, role: Role) -> list[Message]:
    """Tool results become tool messages where they stand; the other blocks between them, user messages."""
    out: list[Message] = []
    parts = _Parts()
    for index, raw in enumerate(content):
        at = f"{where}[{index}]"
        block = _block(raw, at)
        if block.get("type") == "tool_result":
            if not parts.empty:
                out.append(parts.message(role))
                parts = _Parts()
            out.append(_tool_result(block, at))
        else:
            parts.add(block, at)
    if not parts.empty:
        out.append(parts.message(role))
    return out


def transcript(raw_messages: list[Any]) -> list[Message]:
    messages: list[Message] = []
    for index, raw in enumerate(raw_messages):
        where = f"messages[{index}]"
        role = message_role(raw, where, _ROLES, "user or assistant")
        content = raw.get("content")
        if isinstance(content, str):
            messages.append(Message(role=role, content=content))
        elif not isinstance(content, list):
            where = f"{where}.content"
            raise fail(f"`{where}` must be a string or an array of content blocks.", where, "invalid_type")
        elif role == "assistant":
            messages.append(_assistant(content, f"{where}.content"))
        else:
            messages += _user(content, f"{where}.content", role)
    return messages


def system_text(system: Any) -> str:
    """`system` as a string or as text blocks (Claude Code sends several, with `cache_control`)."""
    if system is None:
        return ""
    parts = _Parts()
    parts.blocks(system, "system")
    if parts.attachments:
        raise fail("`system` may hold text blocks only.", "system", "unsupported_content")
    return "\n\n".join(parts.texts)

"""Turning OpenAI `messages` into the single prompt the Kimi web chat accepts.

Kimi's web chat takes one user message per turn. A lone user message is sent as it is. Anything longer becomes a
transcript in which every message keeps its role and position:

    Continue the conversation below as the assistant: answer the last user message.

    <system>
    You are terse.
    </system>

    <user>
    Hi
    </user>

    <assistant>
    Hello!
    </assistant>

    <user>
    What did I just say?
    </user>

`developer` is folded into `system` by the API layer. A `name` becomes an attribute (`<user name="ann">`).
Assistant tool calls are written inside the assistant element as `<tool_call id=… name=…>ARGS</tool_call>`;
tool results as `<tool tool_call_id=… name=…>`. When a Kimi chat is being continued, only the messages after the
last assistant reply are sent, because Kimi already holds the rest.
"""

from __future__ import annotations

from collections.abc import Sequence

from kimi_free_api.core.request import Message

PREAMBLE = "Continue the conversation below as the assistant: answer the last user message."


def _attr(name: str, value: str | None) -> str:
    if not value:
        return ""
    escaped = value.replace("&", "&amp;").replace('"', "&quot;")
    return f' {name}="{escaped}"'


def _element(message: Message) -> str:
    attrs = _attr("name", message.name)
    if message.role == "tool":
        attrs = _attr("tool_call_id", message.tool_call_id) + attrs
    body = message.content
    if message.tool_calls:
        calls = "\n".join(
            f"<tool_call{_attr('id', c.id)}{_attr('name', c.name)}>{c.arguments}</tool_call>"
            for c in message.tool_calls
        )
        body = f"{body}\n{calls}" if body else calls
    return f"<{message.role}{attrs}>\n{body}\n</{message.role}>"


def unanswered_tail(messages: Sequence[Message]) -> Sequence[Message]:
    """The messages after the last assistant reply: what a continued chat has not seen yet."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "assistant":
            return messages[index + 1 :]
    return messages


def build_prompt(messages: Sequence[Message]) -> str:
    if len(messages) == 1 and messages[0].role == "user" and not messages[0].name:
        return messages[0].content
    return "\n\n".join([PREAMBLE, *(_element(m) for m in messages)])

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
last assistant reply are sent, because Kimi already holds the rest. When the request declares tools or asks for
JSON, the output protocol (core/guided/tool_protocol.py) follows the conversation.
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


def _element(message: Message, tool_names: dict[str, str]) -> str:
    name = message.name
    if message.role == "tool":
        # Chat clients do not name the tool in its result; the call it answers does.
        name = name or tool_names.get(message.tool_call_id or "")
    attrs = _attr("name", name)
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


def build_prompt(messages: Sequence[Message], directive: str = "") -> str:
    """`directive`: what the gateway itself asks of the answer (core/guided/tool_protocol.py), after the
    conversation."""
    if len(messages) == 1 and messages[0].role == "user" and not messages[0].name:
        prompt = messages[0].content
    else:
        tool_names = {call.id: call.name for m in messages for call in m.tool_calls if call.id}
        prompt = "\n\n".join([PREAMBLE, *(_element(m, tool_names) for m in messages)])
    return f"{prompt}\n\n{directive}" if directive else prompt

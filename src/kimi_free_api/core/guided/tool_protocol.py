"""The text protocol that lets Kimi's web chat call the client's tools.

Kimi's web chat cannot be given function declarations, so they travel in the prompt, after the conversation, and
Kimi is asked to answer a call in the same form the transcript (core/conversation/prompt.py) already uses for the
assistant's past calls, minus the id, which the gateway assigns:

    <tool_call name="get_weather">{"city": "Paris"}</tool_call>

One element per call, at the end of the reply, as plain text; prose may come before them. The parser is lenient
where models tend to stray: a code fence around the elements, a `<tool_calls>` wrapper, a fenced body, a missing
closing tag on the last element, and `{"name": …, "arguments": …}` in place of the `name` attribute.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from kimi_free_api.core.guided.compaction import compact_declarations
from kimi_free_api.core.guided.persona import PERSONA_RULE
from kimi_free_api.core.guided.tools import JsonOutput, ToolSet

# Where the block of calls begins: the first element (or wrapper), with a code fence opened right before it.
_BLOCK_START = re.compile(r"(?:```[\w+-]*[ \t]*\n[ \t]*)?<tool_calls?\b")
_ELEMENT = re.compile(r"<tool_call\b([^>]*)>(.*?)(?:</tool_call\s*>|\Z)", re.S)
_ATTRIBUTE = re.compile(r"""([\w:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_FENCED = re.compile(r"\A```[\w+-]*[ \t]*\n?(.*?)\n?[ \t]*```\Z", re.S)
_TAG = "<tool_call"
_FENCE_PREFIX = re.compile(r"`{1,3}\Z|```[\w+-]*[ \t]*\Z|```[\w+-]*[ \t]*\n[ \t]*(?P<rest>.*)\Z", re.S)
# How far back from the end of the text a block start can begin (fence, language tag, indentation).
_LOOKBACK = 48


def tools_directive(tools: ToolSet) -> str:
    if tools.choice == "none":
        return "# Tools\n\nNo tool may be called for this reply: answer in plain text, without any <tool_call> element."
    if tools.choice == "function":
        rule = f"This reply must call the tool `{tools.forced}`."
    elif tools.choice == "required":
        rule = "This reply must call at least one of the tools."
    else:
        rule = "Call tools only when they help; otherwise answer in plain text, without any <tool_call> element."
    if tools.parallel:
        many = "You may call several tools at once (one element each) when the calls do not depend on each other."
    else:
        many = "Call at most one tool in this reply."
    declarations = compact_declarations(tools.tools)
    return (
        "# Tools\n\n"
        "You can call the tools (functions) below. Each line declares one: its name, what it does, and the JSON "
        f"Schema of its arguments.\n\n<tools>\n{declarations}\n</tools>\n\n"
        "To call tools, end your reply with one element per call, each on its own line, exactly in this form:\n\n"
        '<tool_call name="TOOL_NAME">{"argument": "value"}</tool_call>\n\n'
        "- The body of the element is one JSON object holding the arguments, valid against the tool's schema "
        "({} when it takes none).\n"
        "- Write the elements as plain text, not inside a code block, and write nothing after them: the results "
        "come back in the next message, as <tool> elements.\n"
        f"- {rule}\n- {many}\n- {PERSONA_RULE}"
    )


def json_directive(output: JsonOutput) -> str:
    text = "# Answer format\n\nAnswer with one JSON value and nothing else: no explanation, no markdown, no code fence."
    if output.schema is None:
        return text + " The value must be a JSON object."
    name = f" ({output.name})" if output.name else ""
    return text + f" It must be valid against this JSON Schema{name}:\n\n{orjson.dumps(output.schema).decode()}"


def output_directive(tools: ToolSet | None, output: JsonOutput | None) -> str:
    """What the prompt must add after the conversation so Kimi answers in a shape the gateway can check."""
    parts = []
    if tools is not None:
        parts.append(tools_directive(tools))
    if output is not None:
        if tools is not None and tools.choice != "none":
            parts.append("When you answer without calling a tool, follow the answer format below.")
        parts.append(json_directive(output))
    return "\n\n".join(parts)


@dataclass(slots=True, frozen=True)
class CallDraft:
    """One call as Kimi wrote it: `arguments` is the parsed JSON, or None with `problem` saying why not."""

    name: str
    arguments: Any
    problem: str = ""


@dataclass(slots=True, frozen=True)
class ParsedReply:
    # The prose before the calls (the whole reply when there are none).
    content: str
    calls: tuple[CallDraft, ...]
    # Whether the reply has a tool-call block at all, even one that failed to parse.
    has_block: bool


def _unescape(value: str) -> str:
    return value.replace("&quot;", '"').replace("&amp;", "&")


def _draft(attributes: str, body: str) -> CallDraft:
    attrs = {m.group(1): _unescape(m.group(2) or m.group(3) or "") for m in _ATTRIBUTE.finditer(attributes)}
    return draft_from(attrs.get("name", ""), body)


def draft_from(name: str, body: str) -> CallDraft:
    """A call from its name (may be "": then the body may carry it) and the text of its arguments."""
    body = body.strip()
    fenced = _FENCED.match(body)
    if fenced:
        body = fenced.group(1).strip()
    try:
        value = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError as exc:
        return CallDraft(name, None, f"the body of the call to `{name or '?'}` is not valid JSON ({exc})")
    if not name and isinstance(value, dict) and isinstance(value.get("name"), str):
        name, value = value["name"], value.get("arguments", {})
        if isinstance(value, str):  # arguments written as a JSON string, as in OpenAI's wire format
            try:
                value = orjson.loads(value) if value.strip() else {}
            except orjson.JSONDecodeError:
                return CallDraft(name, None, f"the arguments of the call to `{name}` are not valid JSON")
    if not name:
        return CallDraft("", None, 'a <tool_call> element has no name="…" attribute')
    if not isinstance(value, dict):
        return CallDraft(name, None, f"the arguments of the call to `{name}` must be a JSON object")
    return CallDraft(name, value)


def parse_reply(text: str) -> ParsedReply:
    start = _BLOCK_START.search(text)
    if start is None:
        return ParsedReply(text, (), has_block=False)
    block = text[start.start() :]
    calls = tuple(_draft(m.group(1), m.group(2)) for m in _ELEMENT.finditer(block))
    return ParsedReply(text[: start.start()].rstrip(), calls, has_block=True)


def _may_begin_block(tail: str) -> bool:
    """Whether more text could turn `tail` (the end of what arrived so far) into the start of a call block."""
    if tail.startswith("<"):
        return len(tail) < len(_TAG) and _TAG.startswith(tail)
    fence = _FENCE_PREFIX.fullmatch(tail)
    if fence is None:
        return False
    rest = fence.group("rest")
    return rest is None or _TAG.startswith(rest)


class BlockGate:
    """Lets the prose of a streamed reply through as it arrives, holding back whatever may begin the call block,
    so protocol text never reaches `content`."""

    __slots__ = ("_pending", "started")

    def __init__(self) -> None:
        self._pending = ""
        self.started = False

    def feed(self, text: str) -> str:
        """The part of the text so far that is certainly prose and was not shown yet."""
        if self.started:
            return ""
        pending = self._pending + text
        start = _BLOCK_START.search(pending)
        if start is not None:
            self.started = True
            self._pending = ""
            return pending[: start.start()].rstrip()
        hold = len(pending)
        for index in range(max(0, len(pending) - _LOOKBACK), len(pending)):
            if pending[index] in "<`" and _may_begin_block(pending[index:]):
                hold = index
                break
        # Trailing blank space too: it belongs to the prose only if more prose follows.
        while hold and pending[hold - 1].isspace():
            hold -= 1
        self._pending = pending[hold:]
        return pending[:hold]

    def flush(self) -> str:
        """What was held back, once the reply ended without a call block."""
        pending, self._pending = self._pending, ""
        return "" if self.started else pending


def repair_request(problems: Sequence[str], *, calling: bool) -> str:
    listed = "\n".join(f"- {problem}" for problem in problems)
    if calling:
        again = (
            'Reply again with only the corrected calls, as <tool_call name="TOOL_NAME">{…}</tool_call> elements, '
            "and nothing else."
        )
    else:
        again = "Reply again with only the corrected answer in the required format, and nothing else."
    return f"Your previous reply could not be used:\n{listed}\n\n{again}"

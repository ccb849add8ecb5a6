"""The text protocol that lets Kimi's web chat call the client's tools.

Kimi's web chat cannot be given function declarations, so they travel in the prompt, after the conversation, and
Kimi is asked to answer a call in the same form the transcript (core/conversation/prompt.py) already uses for the
assistant's past calls, minus the id, which the gateway assigns:

    <tool_call name="get_weather">{"city": "Paris"}</tool_call>

One element per call, at the end of the reply, as plain text; prose may come before them. The parser is lenient
where models tend to stray: a code fence around the elements, a `<tool_calls>` wrapper, a fenced body, a missing
closing tag on the last element, and `{"name": …, "arguments": …}` in place of the `name` attribute.

Kimi's reply is untrusted text of any size, so every scan here is linear in it: tags are found with `str.find`,
each character is looked at a bounded number of times, and the regular expressions left only match bounded or
self-delimiting runs (a 1 MB reply parses in milliseconds; the former regexes took seconds on 20 KB of one letter).
A syntax is one `CallSyntax` (where its block starts, what a streamed tail may grow into, its calls), so that a
second one (Kimi's native tool-call markup) can sit beside the element syntax and the earliest block wins.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from kimi_free_api.core.guided.compaction import compact_declarations
from kimi_free_api.core.guided.jsonschema import MAX_VALUE_DEPTH, nests_too_deeply
from kimi_free_api.core.guided.persona import PERSONA_RULE
from kimi_free_api.core.guided.tools import JsonOutput, ToolSet

_TAG = "<tool_call"
# An attribute with its value, or a bare word, so that a search never restarts inside a word it already read.
_ATTRIBUTE = re.compile(r"""([\w:-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'))?""")
_CLOSING = "</tool_call"
_CLOSING_END = re.compile(r"\s*>")
_FENCE = "```"
_FENCE_LANGUAGE = re.compile(r"[\w+-]*")
_FENCE_PREFIX = re.compile(r"`{1,3}\Z|```[\w+-]*[ \t]*\Z|```[\w+-]*[ \t]*\n[ \t]*(?P<rest>.*)\Z", re.S)
# How far back from a tag (or from the end of the text) a block start can begin (fence, language tag, indentation).
_LOOKBACK = 48
# How much trailing blank space a stream holds back before the call block (rstripped from the prose); beyond this
# it is shown, so that a reply of nothing but blanks costs no more per delta than any other.
_BLANK_HOLD = 1024


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


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


def _is_fence_word(char: str) -> bool:
    return _is_word(char) or char in "+-"


def _unfence(body: str) -> str:
    """The body without a code fence around it (```lang ... ```), if it has one."""
    if len(body) < 2 * len(_FENCE) or not body.startswith(_FENCE) or not body.endswith(_FENCE):
        return body
    language = _FENCE_LANGUAGE.match(body, len(_FENCE), len(body) - len(_FENCE))
    assert language is not None  # it matches the empty string
    return body[language.end() : len(body) - len(_FENCE)].strip()


def _draft(attributes: str, body: str) -> CallDraft:
    attrs = {
        m.group(1): _unescape(m.group(2) or m.group(3) or "")
        for m in _ATTRIBUTE.finditer(attributes)
        if m.group(2) is not None or m.group(3) is not None
    }
    return draft_from(attrs.get("name", ""), body)


def draft_from(name: str, body: str) -> CallDraft:
    """A call from its name (may be "": then the body may carry it) and the text of its arguments."""
    body = _unfence(body.strip())
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
    if nests_too_deeply(value):
        return CallDraft(name, None, f"the arguments of the call to `{name}` nest deeper than {MAX_VALUE_DEPTH} levels")
    return CallDraft(name, value)


class CallSyntax(Protocol):
    """One way Kimi may write tool calls; every method is linear in the text it is given."""

    def block_start(self, text: str, *, final: bool) -> int:
        """Where the first block of calls in `text` starts, or -1. Unless `final`, more text may follow, and a start
        that depends on it (a tag at the very end) is not reported yet: `may_begin` holds it back instead."""
        ...

    def may_begin(self, tail: str) -> bool:
        """Whether more text could turn `tail` (at most `_LOOKBACK` characters) into the start of a block."""
        ...

    def calls(self, block: str) -> tuple[CallDraft, ...]:
        """The calls in a block that `block_start` found (it starts there and runs to the end of the reply)."""
        ...


class ElementSyntax:
    """`<tool_call name="…">{…}</tool_call>` elements, maybe in a `<tool_calls>` wrapper or a code fence."""

    def block_start(self, text: str, *, final: bool) -> int:
        at = text.find(_TAG)
        while at >= 0:
            after = at + len(_TAG)
            if text.startswith("s", after):  # the <tool_calls> wrapper
                after += 1
            if after == len(text) and not final:
                return -1
            if after == len(text) or not _is_word(text[after]):
                return _fence_before(text, at)
            at = text.find(_TAG, after)
        return -1

    def may_begin(self, tail: str) -> bool:
        if tail.startswith("<"):
            return (_TAG + "s").startswith(tail)
        fence = _FENCE_PREFIX.fullmatch(tail)
        if fence is None:
            return False
        rest = fence.group("rest")
        return rest is None or (_TAG + "s").startswith(rest)

    def calls(self, block: str) -> tuple[CallDraft, ...]:
        drafts = []
        at = _element_tag(block, 0)
        while at >= 0:
            opened = block.find(">", at)
            if opened < 0:
                break
            body_end, after = _closing_tag(block, opened + 1)
            drafts.append(_draft(block[at + len(_TAG) : opened], block[opened + 1 : body_end]))
            at = _element_tag(block, after)
        return tuple(drafts)


def _fence_before(text: str, tag: int) -> int:
    """Where a code fence opened right before the tag at `tag` starts (```lang, a newline, indentation), else `tag`."""
    floor = max(0, tag - _LOOKBACK)
    at = tag
    while at > floor and text[at - 1] in " \t":
        at -= 1
    if at == floor or text[at - 1] != "\n":
        return tag
    at -= 1
    while at > floor and text[at - 1] in " \t":
        at -= 1
    while at > floor and _is_fence_word(text[at - 1]):
        at -= 1
    return at - len(_FENCE) if text.endswith(_FENCE, floor, at) else tag


def _element_tag(block: str, start: int) -> int:
    """Where the next `<tool_call` element (not the wrapper) opens at or after `start`, or -1."""
    at = block.find(_TAG, start)
    while at >= 0:
        after = at + len(_TAG)
        if after < len(block) and not _is_word(block[after]):
            return at
        at = block.find(_TAG, after)
    return -1


def _closing_tag(block: str, start: int) -> tuple[int, int]:
    """Where the body that begins at `start` ends and where the text after its closing tag begins; an element that
    is never closed runs to the end."""
    at = block.find(_CLOSING, start)
    while at >= 0:
        end = _CLOSING_END.match(block, at + len(_CLOSING))
        if end is not None:
            return at, end.end()
        at = block.find(_CLOSING, at + len(_CLOSING))
    return len(block), len(block)


_SYNTAXES: tuple[CallSyntax, ...] = (ElementSyntax(),)


def _first_block(text: str, syntaxes: Sequence[CallSyntax], *, final: bool) -> tuple[int, CallSyntax | None]:
    found: tuple[int, CallSyntax | None] = (-1, None)
    for syntax in syntaxes:
        start = syntax.block_start(text, final=final)
        if start >= 0 and (found[1] is None or start < found[0]):
            found = (start, syntax)
    return found


def parse_reply(text: str, syntaxes: Sequence[CallSyntax] = _SYNTAXES) -> ParsedReply:
    """The prose and the calls of a complete reply, in the syntax whose block starts first."""
    start, syntax = _first_block(text, syntaxes, final=True)
    if syntax is None:
        return ParsedReply(text, (), has_block=False)
    return ParsedReply(text[:start].rstrip(), syntax.calls(text[start:]), has_block=True)


def _may_begin_block(tail: str, syntaxes: Sequence[CallSyntax]) -> bool:
    return any(syntax.may_begin(tail) for syntax in syntaxes)


class BlockGate:
    """Lets the prose of a streamed reply through as it arrives, holding back whatever may begin the call block,
    so protocol text never reaches `content`. What it holds is bounded (`_LOOKBACK` + `_BLANK_HOLD`), so each
    delta costs time in proportion to its own length."""

    __slots__ = ("_pending", "_syntaxes", "started")

    def __init__(self, syntaxes: Sequence[CallSyntax] = _SYNTAXES) -> None:
        self._syntaxes = syntaxes
        self._pending = ""
        self.started = False

    def feed(self, text: str) -> str:
        """The part of the text so far that is certainly prose and was not shown yet."""
        if self.started:
            return ""
        pending = self._pending + text
        start, syntax = _first_block(pending, self._syntaxes, final=False)
        if syntax is not None:
            self.started = True
            self._pending = ""
            return pending[:start].rstrip()
        hold = len(pending)
        for index in range(max(0, len(pending) - _LOOKBACK), len(pending)):
            if pending[index] in "<`" and _may_begin_block(pending[index:], self._syntaxes):
                hold = index
                break
        # Trailing blank space too: it belongs to the prose only if more prose follows.
        blank = pending[max(0, hold - _BLANK_HOLD) : hold]
        hold -= len(blank) - len(blank.rstrip())
        self._pending = pending[hold:]
        return pending[:hold]

    def flush(self) -> str:
        """What was held back, once the reply ended without a call block."""
        pending, self._pending = self._pending, ""
        if self.started:
            return ""
        start, syntax = _first_block(pending, self._syntaxes, final=True)
        if syntax is None:
            return pending
        self.started = True
        return pending[:start].rstrip()


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

"""The tool-call text protocol: what Kimi is told, how its reply is read, and what a stream may show."""

from __future__ import annotations

import pytest

from kimi_free_api.core.conversation.prompt import build_prompt
from kimi_free_api.core.guided.tool_protocol import (
    BlockGate,
    CallDraft,
    output_directive,
    parse_reply,
    repair_request,
)
from kimi_free_api.core.guided.tools import FunctionTool, JsonOutput, ToolSet
from kimi_free_api.core.request import Message, ToolCall

WEATHER = FunctionTool("get_weather", "Current weather", {"type": "object", "properties": {"city": {"type": "string"}}})
TIME = FunctionTool("get_time")


def test_the_directive_declares_the_tools_and_the_call_format() -> None:
    text = output_directive(ToolSet((WEATHER, TIME)), None)
    assert '{"name":"get_weather","description":"Current weather","parameters":{"type":"object"' in text
    assert '{"name":"get_time","parameters":{"type":"object"}}' in text
    assert '<tool_call name="TOOL_NAME">{"argument": "value"}</tool_call>' in text
    assert "Call tools only when they help" in text
    assert "several tools at once" in text


@pytest.mark.parametrize(
    ("tools", "rule"),
    [
        (ToolSet((WEATHER,), "required"), "must call at least one of the tools"),
        (ToolSet((WEATHER, TIME), "function", "get_time"), "must call the tool `get_time`"),
        (ToolSet((WEATHER,), parallel=False), "at most one tool"),
        (ToolSet((WEATHER,), "none"), "No tool may be called"),
    ],
)
def test_the_directive_states_the_tool_choice(tools: ToolSet, rule: str) -> None:
    assert rule in output_directive(tools, None)


def test_tool_choice_none_does_not_declare_the_tools() -> None:
    assert "get_weather" not in output_directive(ToolSet((WEATHER,), "none"), None)


def test_json_directives() -> None:
    assert "The value must be a JSON object" in output_directive(None, JsonOutput())
    schema_text = output_directive(None, JsonOutput({"type": "array"}, "list"))
    assert 'valid against this JSON Schema (list):\n\n{"type":"array"}' in schema_text
    both = output_directive(ToolSet((WEATHER,)), JsonOutput())
    assert both.index("# Tools") < both.index("without calling a tool") < both.index("# Answer format")


def test_the_directive_follows_the_conversation_in_the_prompt() -> None:
    lone = build_prompt([Message("user", "Hi")], "# Tools\n...")
    assert lone == "Hi\n\n# Tools\n..."
    history = [Message("user", "Hi"), Message("assistant", "", tool_calls=(ToolCall("c1", "f", "{}"),))]
    assert build_prompt(history, "DIRECTIVE").endswith(
        '<tool_call id="c1" name="f">{}</tool_call>\n</assistant>\n\nDIRECTIVE'
    )
    assert build_prompt(history) == build_prompt(history, "")


@pytest.mark.parametrize(
    ("reply", "content", "calls"),
    [
        ("Just text.", "Just text.", []),
        (
            '<tool_call name="get_weather">{"city": "Paris"}</tool_call>',
            "",
            [CallDraft("get_weather", {"city": "Paris"})],
        ),
        (
            'Checking both.\n\n<tool_call name="get_weather">{"city":"Paris"}</tool_call>\n'
            '<tool_call name="get_time">{}</tool_call>\nDone!',
            "Checking both.",
            [CallDraft("get_weather", {"city": "Paris"}), CallDraft("get_time", {})],
        ),
        # the leniencies
        ('```xml\n<tool_call name="get_time"></tool_call>\n```', "", [CallDraft("get_time", {})]),
        ("Sure:\n```\n<tool_call name='get_time'>{}</tool_call>\n```", "Sure:", [CallDraft("get_time", {})]),
        ('<tool_calls>\n<tool_call name="get_time">{}</tool_call>\n</tool_calls>', "", [CallDraft("get_time", {})]),
        (
            '<tool_call name="get_weather">\n```json\n{"city": "Oslo"}\n```\n</tool_call>',
            "",
            [CallDraft("get_weather", {"city": "Oslo"})],
        ),
        ('<tool_call name="get_weather">{"city": "Rome"}', "", [CallDraft("get_weather", {"city": "Rome"})]),
        (
            '<tool_call>{"name": "get_weather", "arguments": {"city": "Bern"}}</tool_call>',
            "",
            [CallDraft("get_weather", {"city": "Bern"})],
        ),
        (
            '<tool_call>{"name": "get_weather", "arguments": "{\\"city\\": \\"Bern\\"}"}</tool_call>',
            "",
            [CallDraft("get_weather", {"city": "Bern"})],
        ),
        ('<tool_call id="x" name="a&amp;b">{}</tool_call>', "", [CallDraft("a&b", {})]),
        # what cannot be used
        ('<tool_call name="get_weather">{city: Paris}</tool_call>', "", "not valid JSON"),
        ('<tool_call name="get_weather">[1]</tool_call>', "", "must be a JSON object"),
        ("<tool_call>{}</tool_call>", "", 'no name="…" attribute'),
        ('<tool_call name="f">{"a": ' + "[" * 200 + "]" * 200 + "}</tool_call>", "", "nest deeper than 128 levels"),
    ],
)
def test_parse_reply(reply: str, content: str, calls: list[CallDraft] | str) -> None:
    parsed = parse_reply(reply)
    assert parsed.content == content
    assert parsed.has_block == ("<tool_call" in reply)
    if isinstance(calls, str):
        [draft] = parsed.calls
        assert draft.arguments is None and calls in draft.problem
    else:
        assert list(parsed.calls) == calls


def test_a_block_without_complete_elements_is_still_a_block() -> None:
    parsed = parse_reply("Let me call <tool_calls> now")
    assert parsed.has_block and parsed.calls == () and parsed.content == "Let me call"


def _through_gate(pieces: list[str]) -> tuple[str, BlockGate]:
    gate = BlockGate()
    shown = "".join(gate.feed(piece) for piece in pieces)
    return shown + gate.flush(), gate


REPLIES = [
    'Let me check the weather.\n\n<tool_call name="get_weather">{"city": "Paris"}</tool_call>',
    'Sure:\n```xml\n<tool_call name="get_time">{}</tool_call>\n```',
    "No tools needed: 1 < 2 and `x` is fine.\n```python\nprint('<tool')\n```\nBye `` ``` <",
    "Text ending in a lone <",
    "Text ending in ```",
]


@pytest.mark.parametrize("reply", REPLIES)
def test_the_gate_shows_exactly_the_prose_wherever_the_reply_is_cut(reply: str) -> None:
    expected = parse_reply(reply).content
    for size in (1, 2, 3, 7, 1000):
        pieces = [reply[i : i + size] for i in range(0, len(reply), size)]
        shown, gate = _through_gate(pieces)
        assert shown.rstrip() == expected.rstrip(), size
        assert gate.started == parse_reply(reply).has_block
        assert "<tool_call" not in shown


def test_the_gate_passes_prose_on_promptly() -> None:
    gate = BlockGate()
    assert gate.feed("Hello there, ") == "Hello there,"
    assert gate.feed("world. <b") == " world. <b"
    assert gate.feed("r> and <tool") == "r> and"
    assert gate.feed("_call name=") == ""
    assert gate.started and gate.flush() == ""


def test_repair_requests_list_the_problems() -> None:
    text = repair_request(["there is no tool named `x`", "the body is not JSON"], calling=True)
    assert "- there is no tool named `x`\n- the body is not JSON" in text
    assert "only the corrected calls" in text
    assert "only the corrected answer" in repair_request(["no JSON"], calling=False)

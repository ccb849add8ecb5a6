"""Agent-loop robustness at unit level: Kimi's native call markup (whole and streamed in every chunking), persona
calls and echoes of the protocol example, compacted declarations, and the history-as-file threshold."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kimi_free_api.core.conversation.oversize import HISTORY_FILE, fit_prompt
from kimi_free_api.core.conversation.prompt import build_prompt
from kimi_free_api.core.guided import native_calls
from kimi_free_api.core.guided.compaction import DECLARATIONS_BUDGET, compact_declarations, compact_schema
from kimi_free_api.core.guided.persona import PERSONA_RULE, is_persona_call
from kimi_free_api.core.guided.reply import SYNTAXES, read_reply
from kimi_free_api.core.guided.tool_protocol import BlockGate, CallDraft, output_directive
from kimi_free_api.core.guided.tools import FunctionTool, ToolSet
from kimi_free_api.core.request import Message

# Kimi's native markup as issue reports show it: a section, calls `functions.NAME:INDEX`, JSON arguments.
NATIVE = (
    "Let me read both files.\n"
    "<|tool_calls_section_begin|>\n"
    '<|tool_call_begin|>functions.read_file:0<|tool_call_argument_begin|>{"path": "a.txt"}<|tool_call_end|>\n'
    '<|tool_call_begin|>functions.read_file:1<|tool_call_argument_begin|>{"path": "b.txt"}<|tool_call_end|>\n'
    "<|tool_calls_section_end|>"
)
EXAMPLE_ECHO = (
    'I call a tool by writing <tool_call name="TOOL_NAME">{"argument": "value"}</tool_call> at the end of a reply, '
    "but nothing needs one here."
)


def test_native_markup_is_read_as_calls_after_the_prose() -> None:
    parsed = read_reply(NATIVE)
    assert parsed.has_block and parsed.content == "Let me read both files."
    assert parsed.calls == (CallDraft("read_file", {"path": "a.txt"}), CallDraft("read_file", {"path": "b.txt"}))


@pytest.mark.parametrize(
    ("text", "calls"),
    [
        # No section markers, no index, no prefix, the last end marker missing (Kimi stopped after the arguments).
        ("<|tool_call_begin|>get_time<|tool_call_argument_begin|>{}", (CallDraft("get_time", {}),)),
        (
            '<|tool_call_begin|>functions.a:0<|tool_call_argument_begin|>{"x":1}<|tool_calls_section_end|>',
            (CallDraft("a", {"x": 1}),),
        ),
        # A name containing a colon keeps it when what follows is not an index.
        ("<|tool_call_begin|>ns:tool<|tool_call_argument_begin|>{}", (CallDraft("ns:tool", {}),)),
    ],
)
def test_native_markup_variants(text: str, calls: tuple[CallDraft, ...]) -> None:
    assert read_reply(text).calls == calls


def test_broken_native_calls_carry_their_problem() -> None:
    [bad_json] = read_reply("<|tool_call_begin|>functions.f:0<|tool_call_argument_begin|>{oops").calls
    assert bad_json.arguments is None and "not valid JSON" in bad_json.problem
    [no_args] = read_reply("<|tool_calls_section_begin|><|tool_call_begin|>functions.f:0").calls
    assert no_args.name == "f" and "has no arguments" in no_args.problem
    assert read_reply("<|tool_calls_section_begin|>").has_block  # a block without a call: repaired, not shown


def test_whichever_call_form_comes_first_wins() -> None:
    ours = '<tool_call name="a">{}</tool_call>\n<|tool_call_begin|>b<|tool_call_argument_begin|>{}'
    assert [c.name for c in read_reply(ours).calls] == ["a"]
    native = '<|tool_call_begin|>b<|tool_call_argument_begin|>{}<|tool_call_end|> <tool_call name="a">{}</tool_call>'
    assert [c.name for c in read_reply(native).calls] == ["b"]


def stream(text: str, cuts: list[int]) -> tuple[str, str]:
    """What a gate shows while `text` arrives cut at `cuts`, and what it flushes at the end."""
    gate = BlockGate(SYNTAXES)
    shown = ""
    for start, end in zip([0, *cuts], [*cuts, len(text)], strict=True):
        shown += gate.feed(text[start:end])
    return shown, gate.flush()


@pytest.mark.parametrize("text", [NATIVE, "Plain prose with a < sign and <| pipes |> but no call.", EXAMPLE_ECHO])
def test_streamed_in_every_two_piece_chunking_the_gate_agrees_with_the_whole_reply(text: str) -> None:
    parsed = read_reply(text)
    for cut in range(len(text) + 1):
        shown, flushed = stream(text, [cut])
        assert native_calls.MARK not in shown, f"native markup leaked at cut {cut}"
        if parsed.has_block:
            assert shown == parsed.content and flushed == ""
        elif text == EXAMPLE_ECHO:  # the gate stops at the echo; the answer shows the rest once it is read
            assert shown == "I call a tool by writing" and flushed == ""
        else:
            assert shown + flushed == text


def test_streamed_one_character_at_a_time() -> None:
    shown, flushed = stream(NATIVE, list(range(1, len(NATIVE))))
    assert (shown, flushed) == ("Let me read both files.", "")
    prose = "No call <|here|>, just text."
    assert "".join(stream(prose, list(range(1, len(prose))))) == prose


def test_the_gate_holds_back_only_a_bounded_tail() -> None:
    gate = BlockGate(SYNTAXES)
    shown = gate.feed("x" * 10_000 + "<|tool_ca")
    assert shown == "x" * 10_000  # only the possible marker waits


def test_an_echo_of_the_protocol_example_is_prose() -> None:
    parsed = read_reply(EXAMPLE_ECHO)
    assert not parsed.has_block and parsed.calls == () and parsed.content == EXAMPLE_ECHO
    mixed = read_reply('<tool_call name="TOOL_NAME">{}</tool_call>\n<tool_call name="f">{}</tool_call>')
    assert [c.name for c in mixed.calls] == ["f"]


@pytest.mark.parametrize(
    ("name", "arguments", "persona"),
    [
        ("ipython", {"code": "print(1)"}, True),
        ("functions.browser", {}, True),
        ("read", {"path": "/mnt/agents/output/a.txt"}, True),
        ("read", {"paths": [{"p": "/mnt/data/x"}]}, True),
        ("read_file", {"path": "src/a.txt"}, False),
    ],
)
def test_persona_calls_are_recognised(name: str, arguments: Any, persona: bool) -> None:
    assert is_persona_call(name, arguments) is persona


def test_the_directive_keeps_kimi_a_function_calling_model() -> None:
    assert PERSONA_RULE in output_directive(ToolSet((FunctionTool("f"),)), None)
    assert "ipython" in PERSONA_RULE and "/mnt/agents/" in PERSONA_RULE


def test_schemas_lose_annotations_but_not_property_names() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Args",
        "type": "object",
        "properties": {"title": {"type": "string", "title": "Title", "examples": ["x"]}, "n": {"default": 3}},
        "required": ["title"],
    }
    assert compact_schema(schema) == {
        "type": "object",
        "properties": {"title": {"type": "string"}, "n": {"default": 3}},
        "required": ["title"],
    }


def mcp_tools(count: int) -> tuple[FunctionTool, ...]:
    long = "Reads a resource from the server. " + "It explains every option at length. " * 30
    properties = {f"option_{i}": {"type": "string", "description": long} for i in range(5)}
    return tuple(
        FunctionTool(f"mcp__server__tool_{n}", long, {"type": "object", "properties": properties}) for n in range(count)
    )


def test_a_huge_tool_list_is_compacted_below_the_budget_and_keeps_every_tool() -> None:
    tools = mcp_tools(60)
    text = compact_declarations(tools)
    assert len(text) <= DECLARATIONS_BUDGET
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["name"] for line in lines] == [tool.name for tool in tools]
    assert lines[0]["description"] == "Reads a resource from the server."
    assert lines[0]["parameters"]["properties"]["option_0"] == {"type": "string"}
    assert set(lines[0]["parameters"]["properties"]) == {f"option_{i}" for i in range(5)}


def test_a_short_tool_list_keeps_its_descriptions() -> None:
    tools = mcp_tools(2)
    assert [json.loads(line)["description"] for line in compact_declarations(tools).splitlines()] == [
        tools[0].description,
        tools[1].description,
    ]


HISTORY = [
    Message("system", "Be brief."),
    Message("user", "x" * 5_000),
    Message("assistant", "ok"),
    Message("user", "?"),
]


def test_a_prompt_within_the_limit_is_sent_whole() -> None:
    fitted = fit_prompt(HISTORY, "DIRECTIVE", 200_000)
    assert fitted.history == "" and fitted.prompt == build_prompt(HISTORY, "DIRECTIVE")


def test_past_the_limit_the_history_goes_to_a_file_and_the_directive_stays() -> None:
    fitted = fit_prompt(HISTORY, "DIRECTIVE", 2_000)
    assert fitted.history == build_prompt(HISTORY)
    assert HISTORY_FILE in fitted.prompt and fitted.prompt.endswith("\n\nDIRECTIVE")
    assert len(fitted.prompt) <= 2_000
    # Usage counts what Kimi reads: the message and the file.
    assert fitted.counted == f"{fitted.prompt}\n\n{fitted.history}"
    assert fit_prompt(HISTORY, "", 200_000).counted == build_prompt(HISTORY)


def test_a_directive_too_long_for_the_message_goes_to_the_file_too() -> None:
    fitted = fit_prompt(HISTORY, "D" * 3_000, 2_000)
    assert fitted.history == build_prompt(HISTORY, "D" * 3_000)
    assert HISTORY_FILE in fitted.prompt and "D" not in fitted.prompt.replace(HISTORY_FILE, "")


def test_native_marker_search_is_linear() -> None:
    # A reply full of near-markers: one str.find and a bounded tail check, never a backtracking search.
    text = "<|tool_cal" * 50_000
    assert read_reply(text).calls == ()
    gate = BlockGate(SYNTAXES)
    assert gate.feed(text) == text[: -len("<|tool_cal")]

"""Kimi's own tool-call markup, read as calls when Kimi answers in it instead of our protocol.

When a prompt looks agentic, Kimi sometimes writes the markup its models were trained on rather than the
`<tool_call name=…>` elements the prompt asks for:

    <|tool_calls_section_begin|>
    <|tool_call_begin|>functions.read_file:0<|tool_call_argument_begin|>{"path": "a.txt"}<|tool_call_end|>
    <|tool_calls_section_end|>

Each call is a header (`functions.NAME:INDEX`, the prefix and index optional) and a JSON arguments object. The
section markers may be missing, and so may the last `<|tool_call_end|>` when Kimi stops right after the
arguments. Every marker starts with `<|tool_call`, so finding the block is one `str.find` and a stream holds back
at most that many characters.
"""

from __future__ import annotations

from kimi_free_api.core.guided.tool_protocol import CallDraft, draft_from

MARK = "<|tool_call"
CALL_BEGIN = "<|tool_call_begin|>"
ARGUMENTS_BEGIN = "<|tool_call_argument_begin|>"
CALL_END = "<|tool_call_end|>"
SECTION_END = "<|tool_calls_section_end|>"


def _name(header: str) -> str:
    name = header.strip()
    if name.startswith("functions."):
        name = name[len("functions.") :]
    head, colon, index = name.rpartition(":")
    return head if colon and index.strip().isdigit() else name


class NativeSyntax:
    """The `CallSyntax` of Kimi's native markup, beside our `<tool_call>` elements (core/guided/reply.py)."""

    def block_start(self, text: str, *, final: bool) -> int:
        return text.find(MARK)

    def may_begin(self, tail: str) -> bool:
        return MARK.startswith(tail)

    def calls(self, block: str) -> tuple[CallDraft, ...]:
        return parse_block(block)


def parse_block(block: str) -> tuple[CallDraft, ...]:
    """The calls of a native block (`block` starts at its first marker)."""
    drafts = []
    for piece in block.split(CALL_BEGIN)[1:]:
        body = piece.split(CALL_END, 1)[0].split(SECTION_END, 1)[0]
        header, found, arguments = body.partition(ARGUMENTS_BEGIN)
        if not found:  # a header alone: the call was cut before its arguments
            drafts.append(CallDraft(_name(header), None, f"the native call to `{_name(header)}` has no arguments"))
            continue
        drafts.append(draft_from(_name(header), arguments))
    return tuple(drafts)

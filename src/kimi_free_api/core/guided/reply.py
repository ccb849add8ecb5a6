"""Reading a reply for calls in either form Kimi writes them: our protocol (core/guided/tool_protocol.py) or its
native markup (core/guided/native_calls.py), whichever block comes first; echoes of our protocol's example are
prose. A stream reads with `BlockGate(SYNTAXES)`, which holds back a bounded tail that could begin either block.
"""

from __future__ import annotations

from kimi_free_api.core.guided.native_calls import NativeSyntax
from kimi_free_api.core.guided.persona import ECHO_NAME
from kimi_free_api.core.guided.tool_protocol import CallSyntax, ElementSyntax, ParsedReply, parse_reply

SYNTAXES: tuple[CallSyntax, ...] = (ElementSyntax(), NativeSyntax())


def read_reply(text: str) -> ParsedReply:
    """The prose and the calls of a complete reply."""
    parsed = parse_reply(text, SYNTAXES)
    real = tuple(call for call in parsed.calls if call.name != ECHO_NAME)
    if len(real) == len(parsed.calls):
        return parsed
    if not real:  # Kimi quoted the example of the call format, e.g. while explaining it: nothing was called
        return ParsedReply(text, (), has_block=False)
    return ParsedReply(parsed.content, real, has_block=True)

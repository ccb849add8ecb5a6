"""Reading a reply for calls in either form Kimi writes them: our protocol (core/guided/tool_protocol.py) or its
native markup (core/guided/native_calls.py), whichever comes first; echoes of our protocol's example are prose.

`ReplyGate` is the streamed side: prose passes as it arrives, and whatever may begin a call block in either form
is held back (a bounded tail: the native marker's length, and what `BlockGate` holds).
"""

from __future__ import annotations

from kimi_free_api.core.guided import native_calls
from kimi_free_api.core.guided.persona import ECHO_NAME
from kimi_free_api.core.guided.tool_protocol import BlockGate, ParsedReply, parse_reply


def read_reply(text: str) -> ParsedReply:
    """The prose and the calls of a complete reply."""
    native = native_calls.find_block(text)
    parsed = parse_reply(text if native < 0 else text[:native])
    if not parsed.has_block and native >= 0:
        parsed = ParsedReply(text[:native].rstrip(), native_calls.parse_block(text[native:]), has_block=True)
    real = tuple(call for call in parsed.calls if call.name != ECHO_NAME)
    if len(real) == len(parsed.calls):
        return parsed
    if not real:  # Kimi quoted the example of the call format, e.g. while explaining it: nothing was called
        return ParsedReply(text, (), has_block=False)
    return ParsedReply(parsed.content, real, has_block=True)


class ReplyGate:
    """`BlockGate` that also stops at Kimi's native markup."""

    __slots__ = ("_block", "_pending", "_stopped")

    def __init__(self) -> None:
        self._block = BlockGate()
        self._pending = ""
        self._stopped = False

    @property
    def started(self) -> bool:
        return self._stopped or self._block.started

    def feed(self, text: str) -> str:
        """The part of the text so far that is certainly prose and was not shown yet."""
        if self.started:
            return ""
        pending = self._pending + text
        native = native_calls.find_block(pending)
        if native >= 0:
            self._stopped = True
            self._pending = ""
            shown = self._block.feed(pending[:native])
            return shown if self._block.started else (shown + self._block.flush()).rstrip()
        hold = native_calls.holds_prefix(pending)
        self._pending = pending[hold:]
        return self._block.feed(pending[:hold])

    def flush(self) -> str:
        """What was held back, once the reply ended without a call block."""
        if self.started:
            return ""
        pending, self._pending = self._pending, ""
        shown = self._block.feed(pending)
        return shown + self._block.flush()

"""What the client is shown of one chat answer, on any surface: shared by the plain relay (api/openai/chat.py) and
the guided path (api/openai/guided_chat.py)."""

from __future__ import annotations

from collections.abc import Sequence

from kimi_free_api.core.answer.citations import Citations
from kimi_free_api.core.answer.limits import OutputLimit
from kimi_free_api.core.answer.run import ChatRun
from kimi_free_api.core.events import SearchResult
from kimi_free_api.core.request import ChatRequest, Message, ToolCall
from kimi_free_api.core.usage.usage import TokenCounter, Usage, measure

# The finish reasons of an answer that reached the client whole (and so may be continued next turn).
_WHOLE = frozenset({"stop", "tool_calls", "function_call"})
# Pieces joined into one string at a time (see `Pieces`).
_GROUP = 32


class Pieces:
    """Text that arrives a token or two at a time and is needed whole at the end (usage, continuity, the body).

    Kept as a list of pieces, each costs about 60 bytes of object beside its few characters: 500 streams of 100
    pieces held 3.3 MB that way. Joined 32 at a time it costs about its characters, for one `join` per 32 pieces."""

    __slots__ = ("_groups", "_pieces")

    def __init__(self) -> None:
        self._groups: list[str] = []
        self._pieces: list[str] = []

    def append(self, text: str) -> None:
        pieces = self._pieces
        pieces.append(text)
        if len(pieces) == _GROUP:
            self._groups.append("".join(pieces))
            pieces.clear()

    def joined(self) -> str:
        return "".join(self._groups) + "".join(self._pieces)

    def __bool__(self) -> bool:
        return bool(self._groups or self._pieces)


class ShownAnswer:
    """The same whether the answer is streamed or returned whole."""

    __slots__ = ("citations", "inline", "limit", "line_break", "reason", "reasoning", "text")

    def __init__(self, chat: ChatRequest, run: ChatRun) -> None:
        # Streams show search lines as they arrive; a whole answer lists its sources at the end instead.
        self.inline = chat.stream
        self.citations = Citations(run.spec.silent)
        # A stop sequence or token budget cutting JSON would only break it.
        self.limit = OutputLimit.create(chat.stop, chat.max_tokens) if chat.output is None else None
        self.text = Pieces()
        self.reasoning = Pieces()
        self.reason = "stop"
        self.line_break = False

    def add_text(self, text: str) -> str:
        if self.line_break:  # keeps the answer's markdown apart from the search lines above it
            text = "\n" + text
            self.line_break = False
        if self.limit is not None:
            text = self.limit.feed(text)
        if text:
            self.text.append(text)
        return text

    def add_search(self, result: SearchResult) -> str:
        line = self.citations.add(result)
        if not self.inline:
            return ""
        self.line_break = self.line_break or bool(line)
        return line

    @property
    def cut(self) -> bool:
        return self.limit is not None and self.limit.reason is not None

    def finish(self) -> str:
        """Ends the answer; answers any text a stop-sequence check was still holding back."""
        tail = ""
        if self.limit is not None:
            tail = self.limit.flush()
            if tail:
                self.text.append(tail)
            self.reason = self.limit.reason or self.reason
        return tail

    def remember(self, run: ChatRun, content: str, calls: Sequence[ToolCall] = ()) -> None:
        """A complete answer can be continued next turn; a cut or filtered one would leave Kimi's chat and the
        client's history out of step."""
        if self.reason in _WHOLE:
            run.remember(Message(role="assistant", content=content, tool_calls=tuple(calls)))

    async def usage(self, counter: TokenCounter, prompt: str, written: str | None = None) -> Usage:
        """`written`: everything Kimi wrote, when that differs from the text shown (tool calls, repairs)."""
        answer = self.text.joined() if written is None else written
        return await measure(counter, prompt, answer, self.reasoning.joined())

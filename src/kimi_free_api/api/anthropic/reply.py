"""An answer as Anthropic content blocks, and the stream events that build them.

Kimi's thinking is a `thinking` block (streamed as `thinking_delta`s, closed by a `signature_delta`), its text a
`text` block (`text_delta`s), each checked tool call a `tool_use` block (its whole input in one `input_json_delta`).
A new block starts whenever the kind of content changes. Stop reasons: `tool_use` when the answer calls tools,
`max_tokens` when the budget cut it, `stop_sequence` (naming it) when a stop sequence did, `refusal` when Kimi
refused the content, else `end_turn`.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Sequence
from typing import Any

import orjson

from kimi_free_api.api.answer import ShownAnswer
from kimi_free_api.api.anthropic.stream import encode
from kimi_free_api.core.answer.run import ChatRun
from kimi_free_api.core.events import Finished, SearchResult, TextDelta, ThinkingDelta
from kimi_free_api.core.guided.guided import GuidedEvent, ToolCallsMade
from kimi_free_api.core.request import ChatRequest, ToolCall

_STOP_REASONS = {"length": "max_tokens", "content_filter": "refusal"}


def message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def tool_use_id() -> str:
    return f"toolu_{uuid.uuid4().hex[:24]}"


def usage_object(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
    }


def _signature(thinking: str) -> str:
    # Clients keep thinking blocks and send them back with their signature; this gateway never checks it.
    return base64.b64encode(hashlib.sha256(b"kimi-free-api thinking\x00" + thinking.encode()).digest()).decode()


class Reply:
    """Collects the answer's blocks from guided events, and renders their stream events when `streaming`; the
    `Rendering` of api/answering.py. `events` holds the stream events not sent yet."""

    def __init__(self, chat: ChatRequest, run: ChatRun, *, streaming: bool) -> None:
        self.answer = ShownAnswer(chat, run)
        self.streaming = streaming
        # Search lines would break JSON output.
        self.cites = chat.output is None
        self.blocks: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.calls: tuple[ToolCall, ...] = ()
        self._open: dict[str, Any] | None = None

    def take(self, batch: Sequence[GuidedEvent]) -> bytes:
        self._take(batch)
        events = self.take_events()
        return encode(*events) if self.streaming else b""

    def _take(self, batch: Sequence[GuidedEvent]) -> None:
        answer = self.answer
        for event in batch:
            if type(event) is TextDelta:
                self._text(answer.add_text(event.text))
            elif type(event) is ThinkingDelta:
                answer.reasoning.append(event.text)
                self._delta("thinking", {"type": "thinking_delta", "thinking": event.text})
            elif type(event) is SearchResult and self.cites:
                self._text(answer.add_search(event))
            elif type(event) is ToolCallsMade:
                self.calls = event.calls
                for call in event.calls:
                    self._tool_use(call)
            elif type(event) is Finished:
                answer.reason = event.reason

    @property
    def cut(self) -> bool:
        return self.answer.cut

    def filtered(self) -> None:
        self.answer.reason = "content_filter"

    def _text(self, text: str) -> None:
        if text:
            self._delta("text", {"type": "text_delta", "text": text})

    def _delta(self, kind: str, delta: dict[str, Any]) -> None:
        if self._open is None or self._open["type"] != kind:
            self._start({"type": "text", "text": ""} if kind == "text" else {"type": kind, kind: "", "signature": ""})
        assert self._open is not None
        self._open[kind] += delta[kind]
        self.events.append({"type": "content_block_delta", "index": len(self.blocks) - 1, "delta": delta})

    def _start(self, block: dict[str, Any]) -> None:
        self.close()
        self.blocks.append(block)
        self._open = block
        self.events.append({"type": "content_block_start", "index": len(self.blocks) - 1, "content_block": {**block}})

    def _tool_use(self, call: ToolCall) -> None:
        self._start({"type": "tool_use", "id": call.id, "name": call.name, "input": {}})
        index = len(self.blocks) - 1
        self.blocks[index] = {**self.blocks[index], "input": orjson.loads(call.arguments)}
        delta = {"type": "input_json_delta", "partial_json": call.arguments}
        self.events.append({"type": "content_block_delta", "index": index, "delta": delta})
        self.close()

    def close(self) -> None:
        """Ends the block being written."""
        block, self._open = self._open, None
        if block is None:
            return
        index = len(self.blocks) - 1
        if block["type"] == "thinking":
            block["signature"] = _signature(block["thinking"])
            delta = {"type": "signature_delta", "signature": block["signature"]}
            self.events.append({"type": "content_block_delta", "index": index, "delta": delta})
        self.events.append({"type": "content_block_stop", "index": index})

    def finish(self, *, sources: bool) -> None:
        """Ends the answer: what a stop-sequence check held back, the source list (`sources`), the last block."""
        self._text(self.answer.finish())
        if sources and not self.calls and self.cites:
            self._text(self.answer.citations.sources())
        self.close()
        if self.calls:
            self.answer.reason = "tool_calls"

    def remember(self, run: ChatRun) -> None:
        """A whole answer may be continued next turn (core/continuity.py)."""
        self.answer.remember(run, self.answer.text.joined(), self.calls)

    @property
    def stop(self) -> tuple[str, str | None]:
        """`stop_reason` and `stop_sequence`."""
        if self.calls:
            return "tool_use", None
        limit = self.answer.limit
        if limit is not None and limit.reason == "stop" and limit.stop_sequence is not None:
            return "stop_sequence", limit.stop_sequence
        return _STOP_REASONS.get(self.answer.reason, "end_turn"), None

    def take_events(self) -> list[dict[str, Any]]:
        events, self.events = self.events, []
        return events

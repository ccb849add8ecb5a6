"""Replay mode: Chat streams (and a catalog) shaped like a recorded trace, so that what a user saw becomes a test.

A trace (`kimi-free-api doctor --record`, or the gateway's `KIMI_TRACE_FILE`) is JSON lines holding the *shape* of
each call and frame: keys and protocol words kept, every other value erased to its type name (`"str"`, `"num"`,
`"bool"`, `"null"`). The emulator reads that format itself (it imports nothing of the gateway) and plays each
recorded stream back with the erased values filled in: its own words for text, its own chat, message and block
ids (consistent across frames, so appends land on the block their `set` opened), counting `eventOffset`s.

Which recorded stream answers a Chat request: the one recorded for the same kind of request (a doctor step named
`thinking`, `search` or `upload`, else `plain`), failing that the recorded streams in turn.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

TRACE_FORMAT = "kimi-free-api-trace/1"
_WORDS = ("Replayed", "words", "fill", "the", "shape", "of", "a", "recorded", "frame", "回放", "🙂")
_DEEP = "{…}"


class TraceError(ValueError):
    pass


@dataclass
class RecordedStream:
    step: str
    frames: list[Any] = field(default_factory=list)
    # The end envelope: its flags and shape; None when the stream had none.
    end: tuple[int, Any] | None = None
    # A Chat call refused before any frame: its HTTP status and body shape.
    refusal: tuple[int, Any] | None = None


@dataclass
class Trace:
    streams: list[RecordedStream]
    # The answer shapes of unary calls, by call name (the first of each).
    answers: dict[str, Any]
    _turns: Iterator[int] = field(init=False)

    def __post_init__(self) -> None:
        self._turns = itertools.cycle(range(len(self.streams)))

    def pick(self, *, thinking: bool, search: bool, files: bool) -> RecordedStream:
        step = "thinking" if thinking else "search" if search else "upload" if files else "plain"
        for stream in self.streams:
            if stream.step == step:
                return stream
        return self.streams[next(self._turns)]


def _lines(path: str) -> Iterator[dict[str, Any]]:
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise TraceError(f"cannot read the trace {path}: {exc.strerror}") from exc
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise TraceError(f"line {number} of the trace is not JSON") from exc
        if isinstance(entry, dict):
            yield entry


def load_trace(path: str) -> Trace:
    streams: list[RecordedStream] = []
    answers: dict[str, Any] = {}
    current: RecordedStream | None = None
    header = False
    for entry in _lines(path):
        kind, call, step = entry.get("kind"), entry.get("call"), str(entry.get("step") or "")
        if kind == "trace":
            if entry.get("format") != TRACE_FORMAT:
                raise TraceError(f"unknown trace format {entry.get('format')!r}; expected {TRACE_FORMAT}")
            header = True
        elif kind == "request" and call == "Chat":
            current = RecordedStream(step)
            streams.append(current)
        elif kind == "answer" and call == "Chat" and current is not None and not current.frames:
            if entry.get("status") != 200:
                current.refusal = (int(entry.get("status") or 500), entry.get("shape"))
        elif kind == "answer" and isinstance(call, str):
            answers.setdefault(call, entry.get("shape"))
        elif kind == "frame" and "flags" not in entry:
            shape = entry.get("shape")
            # A gateway trace has no request lines: a stream begins at its `chat` frame.
            if current is None or (isinstance(shape, dict) and "chat" in shape and current.frames):
                current = RecordedStream(step)
                streams.append(current)
            current.frames.append(shape)
        elif kind == "end" and current is not None:
            current.end = (int(entry.get("flags") or 0), entry.get("shape"))
    if not header:
        raise TraceError(f"{path} is not a kimi-free-api trace (no {TRACE_FORMAT} header line)")
    streams = [stream for stream in streams if stream.frames or stream.refusal]
    if not streams:
        raise TraceError(f"the trace {path} holds no Chat stream")
    return Trace(streams, answers)


def _parent(own: str, parent: str) -> dict[str, str]:
    return {"id": own, "parentId": parent, "parent_id": parent}


@dataclass
class Filler:
    """Turns shapes back into values: the emulator's own text, and the ids of the chat it is answering."""

    chat_id: str
    question_id: str
    reply_id: str
    _words: Iterator[str] = field(default_factory=lambda: itertools.cycle(_WORDS))
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _blocks: dict[str, str] = field(default_factory=dict)
    _opened: Iterator[int] = field(default_factory=itertools.count)

    def value(self, shape: Any, key: str = "") -> Any:
        """A value of this shape; strings by what their key usually holds."""
        if isinstance(shape, dict):
            return {name: self.value(item, name) for name, item in shape.items()}
        if isinstance(shape, list):
            return [] if shape == ["…"] else [self.value(item, key) for item in shape]
        if shape == "str":
            return self._text(key)
        if shape == "num":
            return 1
        if shape == "bool":
            return False
        if shape in ("null", None):
            return None
        return {} if shape == _DEEP else shape  # a protocol word, kept as recorded

    def _text(self, key: str) -> str:
        if key in ("content", "text", "snippet", "title", "message"):
            return next(self._words) + " "
        if key.endswith("Time") or key.endswith("_time"):
            return "2026-01-01T00:00:00.000Z"
        if key in ("url", "iconUrl", "icon_url"):
            return f"https://example.com/replay/{next(self._names)}"
        return f"replay-{next(self._names)}"

    def frame(self, shape: Any, offset: int) -> Any:
        """A whole frame: ids tied to this chat, a block id shared by a block's `set` and its `append`s."""
        frame = self.value(shape)
        if not isinstance(frame, dict):
            return frame
        for name in ("eventOffset", "event_offset"):  # a trace keeps the casing it was recorded in
            if isinstance(frame.get(name), int):
                frame[name] = offset
        self._tie(frame.get("chat"), {"id": self.chat_id})
        message = frame.get("message")
        if isinstance(message, dict):
            user = message.get("role") == "user"
            own = self.question_id if user else self.reply_id
            self._tie(message, _parent(own, "" if user else self.question_id))
            for block in message.get("blocks") or ():
                self._tie(block, _parent("0_0", own))
        block = frame.get("block")
        if isinstance(block, dict):
            self._tie(block, _parent(self._block_id(frame), self.reply_id))
        return frame

    def _block_id(self, frame: dict[str, Any]) -> str:
        mask = frame.get("mask")
        kind = mask.split(".")[1] if isinstance(mask, str) and mask.count(".") >= 1 else "block"
        if frame.get("op") == "set" and mask == f"block.{kind}":
            self._blocks[kind] = f"0_{next(self._opened)}"
        return self._blocks.setdefault(kind, f"0_{next(self._opened)}")

    @staticmethod
    def _tie(target: Any, ids: dict[str, str]) -> None:
        if isinstance(target, dict):
            for name, value in ids.items():
                if isinstance(target.get(name), str):
                    target[name] = value

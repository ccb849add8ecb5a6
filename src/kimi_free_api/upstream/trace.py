"""A trace of Kimi's wire format: one JSON line per request, answer or frame, holding only its shape.

Shapes come from `upstream/drift.py`, so a trace carries keys, protocol words and value types but no text, ids or
tokens: it is safe to attach to a bug report, and the emulator can replay it (`emulator/replay.py`) so that what a
user saw becomes a test. Each line is an object with `kind` (`request`, `answer`, `frame`, `end`, or a line without
a shape such as the doctor's `verdict`), labels that are protocol vocabulary chosen by the code (`step`, `call`,
`status`, `flags`) and `shape`.

The format is versioned by the first line, `{"kind": "trace", "format": TRACE_FORMAT}`; readers skip kinds they do
not know.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import IO, Any

import orjson

from kimi_free_api.upstream.connect import END_FLAGS
from kimi_free_api.upstream.drift import frame_shape

TRACE_FORMAT = "kimi-free-api-trace/1"
Label = str | int


class TraceRecorder:
    """Appends shapes to a JSONL file; one recorder may be shared by every stream of a process (hence the lock)."""

    def __init__(self, path: str | Path, *, fresh: bool = False) -> None:
        """`fresh` starts the file anew; otherwise a trace is appended (a gateway restarting keeps its history)."""
        self._file: IO[bytes] = Path(path).open("wb" if fresh else "ab")  # noqa: SIM115 - open as long as the recorder
        self._lock = threading.Lock()
        self._step = ""
        self._write({"kind": "trace", "format": TRACE_FORMAT})

    def begin(self, step: str) -> None:
        """Labels what follows with the step of a script (the doctor's `plain`, `thinking` …)."""
        self._step = step

    def note(self, kind: str, value: Any, **labels: Label) -> None:
        line: dict[str, Any] = {"kind": kind}
        if self._step:
            line["step"] = self._step
        line.update(labels)
        line["shape"] = frame_shape(value)
        self._write(line)

    def mark(self, kind: str, **labels: Label) -> None:
        """A line without a shape, e.g. the doctor's verdict on one assumption."""
        self._write({"kind": kind, **({"step": self._step} if self._step else {}), **labels})

    def envelope(self, flags: int, message: bytes) -> None:
        """One envelope of a Chat stream (the observer `WebChatStream` calls): a frame, or the end of the stream.

        A data envelope that is not a JSON object keeps its flags in the line, so a replay can tell it apart.
        """
        try:
            value = orjson.loads(message) if message else None
        except orjson.JSONDecodeError:
            value = None
        if flags & END_FLAGS:
            self.note("end", value, flags=flags)
        elif isinstance(value, dict):
            self.note("frame", value)
        else:
            self.note("frame", value, flags=flags)

    def _write(self, line: dict[str, Any]) -> None:
        data = orjson.dumps(line, option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE)
        with self._lock:
            self._file.write(data)
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()

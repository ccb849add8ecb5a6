"""The trace file: shapes of calls and envelopes, one JSON line each, with nothing a user wrote or a server minted."""

from __future__ import annotations

from pathlib import Path

import orjson

from kimi_free_api.upstream.connect import FLAG_END_STREAM
from kimi_free_api.upstream.trace import TRACE_FORMAT, TraceRecorder

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJl"


def _lines(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_lines_hold_labels_and_shapes_only(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    trace = TraceRecorder(path)
    trace.begin("plain")
    trace.note("request", {"refresh_token": TOKEN, "message": {"content": "my diary"}}, call="RefreshToken")
    frame = {"op": "append", "mask": "block.text.content", "block": {"id": "0_3", "text": {"content": "dear diary"}}}
    trace.envelope(0, orjson.dumps(frame))
    trace.envelope(0, b"")
    trace.envelope(0, b"<html>")
    trace.envelope(FLAG_END_STREAM, b"{}")
    trace.begin("")
    trace.mark("verdict", check="chat.text", result="held")
    trace.close()
    text = path.read_text()
    assert TOKEN not in text and "diary" not in text and "0_3" not in text
    assert _lines(path) == [
        {"kind": "trace", "format": TRACE_FORMAT},
        {"kind": "request", "step": "plain", "call": "RefreshToken",
         "shape": {"message": {"content": "str"}, "refresh_token": "str"}},
        {"kind": "frame", "step": "plain",
         "shape": {"block": {"id": "str", "text": {"content": "str"}}, "mask": "block.text.content", "op": "append"}},
        {"kind": "frame", "step": "plain", "flags": 0, "shape": "null"},
        {"kind": "frame", "step": "plain", "flags": 0, "shape": "null"},
        {"kind": "end", "step": "plain", "flags": FLAG_END_STREAM, "shape": {}},
        {"kind": "verdict", "check": "chat.text", "result": "held"},
    ]  # fmt: skip


def test_a_recorder_appends_to_an_existing_trace(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    for _ in range(2):
        TraceRecorder(path).close()
    assert [line["kind"] for line in _lines(path)] == ["trace", "trace"]

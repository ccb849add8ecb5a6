"""Shapes keep the protocol's vocabulary and erase everything a user wrote or a server minted."""

from __future__ import annotations

import logging

import pytest

from kimi_free_api.upstream.drift import DriftMonitor, frame_shape, shape_text


def test_shape_keeps_keys_and_enum_values_but_no_text_ids_or_tokens() -> None:
    frame = {
        "op": "set",
        "mask": "block.exception",
        "block": {
            "id": "0",
            "exception": {
                "error": {
                    "reason": "REASON_COMPLETION_OVERLOADED",
                    "severity": "SEVERITY_BLOCK_RETRACT",
                    "localizedMessage": {"locale": "en-US", "message": "Kimi is busy, try later"},
                }
            },
        },
        "chat": {"id": "1a0a4ba7-91d2-4c36-8a51-09e4fa50aa86", "name": "my secret plans"},
        "eventOffset": 7,
        "token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJl",
    }
    text = shape_text(frame)
    assert "REASON_COMPLETION_OVERLOADED" in text
    assert "SEVERITY_BLOCK_RETRACT" in text
    assert '"mask":"block.exception"' in text
    assert '"op":"set"' in text
    for leaked in ("busy", "1a0a4ba7", "secret", "eyJ", "en-US"):
        assert leaked not in text
    assert frame_shape(frame)["eventOffset"] == "num"


def test_lists_keep_one_entry_per_distinct_shape_and_depth_is_capped() -> None:
    assert frame_shape([{"a": 1}, {"a": 2}, {"b": "x"}]) == [{"a": "num"}, {"b": "str"}]
    deep: dict[str, object] = {}
    cursor = deep
    for _ in range(50):
        cursor["k"] = {}
        cursor = cursor["k"]  # type: ignore[assignment]
    assert "{…}" in shape_text(deep)


def test_monitor_logs_each_shape_once_and_counts_every_time(caplog: pytest.LogCaptureFixture) -> None:
    monitor = DriftMonitor()
    with caplog.at_level(logging.WARNING, logger="kimi_free_api.upstream.drift"):
        for n in range(5):
            monitor.note("block", {"mystery": {"n": n, "text": f"hello {n}"}})
        monitor.note("block", {"other": True})
    assert len(caplog.records) == 2
    assert "hello" not in caplog.text
    assert monitor.counts() == {"block": 6}
    assert sorted(r.count for r in monitor.records()) == [1, 5]


def test_monitor_stops_remembering_new_shapes_at_its_cap() -> None:
    monitor = DriftMonitor()
    for n in range(DriftMonitor.MAX_SHAPES + 50):
        monitor.note("frame", {f"key{n}": 1})
    assert len(monitor.records()) == DriftMonitor.MAX_SHAPES
    assert monitor.counts()["frame"] == DriftMonitor.MAX_SHAPES + 50

"""Connect envelopes: writing, reading back from arbitrary cuts, request parsing, end-of-stream styles."""

from __future__ import annotations

import orjson
import pytest

from kimi_free_api.emulator.framing import (
    FLAG_END_STREAM,
    FLAG_TRAILER,
    EnvelopeReader,
    FramingError,
    end_stream,
    envelope,
    frame,
    parse_request,
    utf8_cuts,
)

MESSAGES = [{"op": "set", "eventOffset": 1}, {"block": {"text": {"content": "你好 🌏 café"}}}, {"done": {}}]


def test_round_trip_through_reads_of_one_byte() -> None:
    stream = b"".join(frame(m) for m in MESSAGES) + end_stream("connect")
    reader = EnvelopeReader()
    found = [envelope for byte in range(len(stream)) for envelope in reader.feed(stream[byte : byte + 1])]
    assert [orjson.loads(message) for _, message in found[:-1]] == MESSAGES
    assert found[-1] == (FLAG_END_STREAM, b"{}")
    assert reader.pending == 0


def test_envelope_header() -> None:
    assert envelope(b"{}", 2) == b"\x02\x00\x00\x00\x02{}"


def test_parse_request_accepts_one_envelope() -> None:
    assert parse_request(frame({"scenario": "SCENARIO_K2"})) == {"scenario": "SCENARIO_K2"}


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b"{}", "too short"),
        (orjson.dumps({"scenario": "SCENARIO_K2"}), "flags"),
        (envelope(b"{}", 1), "flags"),
        (frame({}) + b"x", "declares"),
        (frame({})[:-1], "declares"),
        (envelope(b"{nope"), "JSON"),
        (envelope(b"[1]"), "object"),
    ],
)
def test_parse_request_refuses(body: bytes, complaint: str) -> None:
    with pytest.raises(FramingError, match=complaint):
        parse_request(body)


def test_end_stream_styles() -> None:
    error = {"code": "permission_denied", "message": "chat.forbidden: 不行 100%"}
    assert end_stream("connect", error) == envelope(orjson.dumps({"error": error}), FLAG_END_STREAM)
    assert end_stream("grpc-web") == envelope(b"grpc-status: 0\r\n", FLAG_TRAILER)
    trailer = end_stream("grpc-web", error)[5:].decode("ascii")
    assert trailer == "grpc-status: 7\r\ngrpc-message: chat.forbidden: %E4%B8%8D%E8%A1%8C 100%25\r\n"
    assert end_stream("none") == end_stream("none", error) == b""


def test_utf8_cuts_land_inside_characters() -> None:
    data = frame({"content": "ab 你好 and then 🌏 again"})
    pieces = utf8_cuts(data)
    assert b"".join(pieces) == data
    assert len(pieces) == 3
    for piece in pieces[:-1]:
        with pytest.raises(UnicodeDecodeError):
            piece[5:].decode()


def test_utf8_cuts_of_ascii_halve_the_frame() -> None:
    data = frame({"done": {}})
    assert utf8_cuts(data) == [data[: len(data) // 2], data[len(data) // 2 :]]

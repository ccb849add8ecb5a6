"""EnvelopeDecoder: whole envelopes out of reads cut anywhere."""

from __future__ import annotations

import gzip
import zlib

import orjson
import pytest

from kimi_free_api.core.errors import UpstreamError
from kimi_free_api.upstream.connect import (
    END_FLAGS,
    FLAG_COMPRESSED,
    FLAG_END_STREAM,
    FLAG_TRAILERS,
    MAX_ENVELOPE,
    EnvelopeDecoder,
    encode_envelope,
    gunzip,
)

MESSAGES: list[tuple[int, bytes]] = [
    (0, orjson.dumps({"op": "set", "eventOffset": 1, "chat": {"id": "d3rglnb12h610c3cc300", "name": "Untitled"}})),
    (
        0,
        orjson.dumps({"op": "append", "mask": "block.text.content", "block": {"text": {"content": "你好，世界 🌏 é"}}}),
    ),
    (0, b""),
    (0, orjson.dumps({"heartbeat": {}})),
    (FLAG_END_STREAM, b"{}"),
]
STREAM = b"".join(encode_envelope(message, flags) for flags, message in MESSAGES)


def _feed_pieces(pieces: list[bytes]) -> tuple[list[tuple[int, bytes]], EnvelopeDecoder]:
    decoder = EnvelopeDecoder()
    got: list[tuple[int, bytes]] = []
    for piece in pieces:
        got.extend(decoder.feed(piece))
    return got, decoder


def test_encode_envelope_layout() -> None:
    assert encode_envelope(b"abc") == b"\x00\x00\x00\x00\x03abc"
    assert encode_envelope(b"{}", FLAG_END_STREAM) == b"\x02\x00\x00\x00\x02{}"
    assert encode_envelope(b"x" * 300, FLAG_TRAILERS)[:5] == b"\x80\x00\x00\x01\x2c"
    assert encode_envelope(b"") == b"\x00\x00\x00\x00\x00"


def test_whole_stream_in_one_read() -> None:
    got, decoder = _feed_pieces([STREAM])
    assert got == MESSAGES
    assert not decoder.has_partial


def test_split_at_every_single_boundary() -> None:
    for cut in range(len(STREAM) + 1):
        got, decoder = _feed_pieces([STREAM[:cut], STREAM[cut:]])
        assert got == MESSAGES, f"cut at {cut}"
        assert not decoder.has_partial


def test_split_at_every_pair_of_boundaries() -> None:
    for first in range(len(STREAM) + 1):
        for second in range(first, len(STREAM) + 1):
            got, _ = _feed_pieces([STREAM[:first], STREAM[first:second], STREAM[second:]])
            assert got == MESSAGES, f"cuts at {first}, {second}"


def test_one_byte_at_a_time() -> None:
    got, decoder = _feed_pieces([STREAM[i : i + 1] for i in range(len(STREAM))])
    assert got == MESSAGES
    assert not decoder.has_partial


def test_cut_inside_header_keeps_the_partial() -> None:
    decoder = EnvelopeDecoder()
    assert decoder.feed(STREAM[:3]) == []
    assert decoder.has_partial
    # The whole header but none of the body: still nothing.
    assert decoder.feed(STREAM[3:5]) == []
    assert decoder.has_partial
    assert decoder.feed(STREAM[5:]) == MESSAGES
    assert not decoder.has_partial


def test_cut_inside_a_multibyte_character_decodes_the_text_whole() -> None:
    start = STREAM.index("你".encode())
    decoder = EnvelopeDecoder()
    first = decoder.feed(STREAM[: start + 1])  # one byte of a three-byte character
    assert [flags for flags, _ in first] == [0]
    rest = decoder.feed(STREAM[start + 1 :])
    text_frame = orjson.loads(rest[0][1])
    assert text_frame["block"]["text"]["content"] == "你好，世界 🌏 é"
    emoji = STREAM.index("🌏".encode())
    for inside in range(emoji + 1, emoji + 4):
        got, _ = _feed_pieces([STREAM[:inside], STREAM[inside:]])
        assert got == MESSAGES


def test_empty_feed() -> None:
    decoder = EnvelopeDecoder()
    assert decoder.feed(b"") == []
    assert not decoder.has_partial


def test_compressed_envelope_is_gunzipped_and_keeps_its_flags() -> None:
    payload = orjson.dumps({"block": {"text": {"content": "压缩 " * 50}}})
    data = encode_envelope(gzip.compress(payload), FLAG_COMPRESSED) + encode_envelope(
        gzip.compress(b'{"error":{"code":"internal"}}'), FLAG_COMPRESSED | FLAG_END_STREAM
    )
    for cut in range(len(data) + 1):
        got, _ = _feed_pieces([data[:cut], data[cut:]])
        assert got == [
            (FLAG_COMPRESSED, payload),
            (FLAG_COMPRESSED | FLAG_END_STREAM, b'{"error":{"code":"internal"}}'),
        ]


@pytest.mark.parametrize("body", [b"not gzip at all", gzip.compress(b'{"op":"set"}')[:-6]])
def test_a_compressed_envelope_that_does_not_decompress_is_an_upstream_error(body: bytes) -> None:
    with pytest.raises(UpstreamError, match="does not decompress"):
        EnvelopeDecoder().feed(encode_envelope(body, FLAG_COMPRESSED))


def test_oversize_envelope_raises_before_the_body_arrives() -> None:
    header = bytes([0]) + (MAX_ENVELOPE + 1).to_bytes(4, "big")
    decoder = EnvelopeDecoder()
    with pytest.raises(UpstreamError) as caught:
        decoder.feed(header)
    assert caught.value.status == 502
    assert str(MAX_ENVELOPE + 1) in caught.value.message


def test_oversize_envelope_after_a_good_one_raises() -> None:
    data = encode_envelope(b"{}") + bytes([0]) + (0xFFFFFFFF).to_bytes(4, "big")
    with pytest.raises(UpstreamError):
        EnvelopeDecoder().feed(data)


def test_envelope_of_exactly_the_maximum_is_accepted_as_partial() -> None:
    decoder = EnvelopeDecoder()
    assert decoder.feed(bytes([0]) + MAX_ENVELOPE.to_bytes(4, "big") + b"{") == []
    assert decoder.has_partial


@pytest.mark.parametrize(
    ("flags", "is_end"),
    [(0, False), (FLAG_COMPRESSED, False), (FLAG_END_STREAM, True), (FLAG_TRAILERS, True), (0x03, True), (0x81, True)],
)
def test_end_stream_flags(flags: int, is_end: bool) -> None:
    message = b"grpc-status: 0\r\n" if flags & FLAG_TRAILERS else b"{}"
    raw = gzip.compress(message) if flags & FLAG_COMPRESSED else message
    [(got_flags, got_message)] = EnvelopeDecoder().feed(encode_envelope(raw, flags))
    assert got_flags == flags
    assert got_message == message
    assert bool(got_flags & END_FLAGS) is is_end
    assert END_FLAGS == FLAG_END_STREAM | FLAG_TRAILERS == 0x82


def _zeros_gzipped(size: int) -> bytes:
    """`size` zero bytes, gzip-compressed without ever holding them: a decompression bomb (about 1000:1)."""
    squeezer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    parts = [squeezer.compress(block) for _ in range(size // len(block))]
    return b"".join(parts) + squeezer.flush()


def test_decompression_bomb_is_capped_on_output() -> None:
    bomb = _zeros_gzipped(MAX_ENVELOPE + 16 * 1024 * 1024)
    assert len(bomb) < 1024 * 1024  # small on the wire, so no input cap would catch it
    with pytest.raises(UpstreamError, match="inflates past"):
        EnvelopeDecoder().feed(encode_envelope(bomb, FLAG_COMPRESSED))


def test_gunzip_up_to_its_limit() -> None:
    assert gunzip(_zeros_gzipped(2 * 1024 * 1024), limit=2 * 1024 * 1024) == bytes(2 * 1024 * 1024)
    with pytest.raises(UpstreamError, match="inflates past"):
        gunzip(_zeros_gzipped(2 * 1024 * 1024), limit=2 * 1024 * 1024 - 1)


def test_gunzip_reads_every_member() -> None:
    assert gunzip(gzip.compress(b'{"a":') + gzip.compress(b"1}")) == b'{"a":1}'


@pytest.mark.parametrize("data", [b"not gzip", gzip.compress(b"cut short " * 50)[:-12]])
def test_gunzip_refuses_broken_data(data: bytes) -> None:
    with pytest.raises(UpstreamError):
        gunzip(data)

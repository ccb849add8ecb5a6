"""Connect envelopes: a flags byte, a 4-byte big-endian length, then the message."""

from __future__ import annotations

import itertools
import re
import struct
import urllib.parse
from typing import Any

import orjson

FLAG_END_STREAM = 0x02  # Connect's last envelope, carrying the JSON trailer
FLAG_TRAILER = 0x80  # gRPC-web's last envelope, carrying HTTP-style trailer lines
_HEADER = struct.Struct(">BI")
# Connect codes as gRPC status numbers, for the gRPC-web trailer.
GRPC_STATUS = {
    "invalid_argument": 3,
    "not_found": 5,
    "permission_denied": 7,
    "resource_exhausted": 8,
    "internal": 13,
    "unavailable": 14,
    "unauthenticated": 16,
}
_MULTIBYTE_START = re.compile(rb"[\xc0-\xff]")


class FramingError(ValueError):
    pass


def envelope(message: bytes, flags: int = 0) -> bytes:
    return _HEADER.pack(flags, len(message)) + message


def frame(obj: Any) -> bytes:
    return envelope(orjson.dumps(obj))


def end_stream(style: str, error: dict[str, Any] | None = None) -> bytes:
    """The closing envelope in one of the styles the protocol document leaves open; `none` has none."""
    if style == "connect":
        return envelope(orjson.dumps({"error": error} if error else {}), FLAG_END_STREAM)
    if style == "grpc-web":
        lines = "grpc-status: 0\r\n"
        if error:
            message = "".join(c if " " <= c <= "~" and c != "%" else urllib.parse.quote(c) for c in error["message"])
            lines = f"grpc-status: {GRPC_STATUS[error['code']]}\r\ngrpc-message: {message}\r\n"
        return envelope(lines.encode("ascii"), FLAG_TRAILER)
    return b""


def parse_request(body: bytes) -> dict[str, Any]:
    """The JSON object inside a request that must be exactly one uncompressed envelope."""
    if len(body) < _HEADER.size:
        raise FramingError("the body is not a Connect envelope (too short)")
    flags, length = _HEADER.unpack_from(body)
    if flags != 0:
        raise FramingError(f"unexpected envelope flags {flags:#04x} (is the body bare JSON?)")
    if length != len(body) - _HEADER.size:
        raise FramingError(f"the envelope declares {length} bytes but carries {len(body) - _HEADER.size}")
    try:
        message = orjson.loads(body[_HEADER.size :])
    except orjson.JSONDecodeError as exc:
        raise FramingError(f"the envelope does not hold JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise FramingError("the request message must be a JSON object")
    return message


def utf8_cuts(data: bytes) -> list[bytes]:
    """`data` in 2 or 3 pieces, cut one byte into the first multi-byte character of each half of the frame.

    A frame without any is cut in half, which still splits its envelope header from the end of its JSON.
    """
    middle = len(data) // 2
    starts = (_MULTIBYTE_START.search(data, _HEADER.size), _MULTIBYTE_START.search(data, middle))
    cuts = sorted({m.start() + 1 for m in starts if m}) or [middle]
    return [data[a:b] for a, b in itertools.pairwise([0, *cuts, len(data)])]


class EnvelopeReader:
    """Reassembles envelopes from reads cut anywhere; what a client of the Chat stream has to do."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buffer = self._buffer + data
        found: list[tuple[int, bytes]] = []
        offset = 0
        while len(buffer) - offset >= _HEADER.size:
            flags, length = _HEADER.unpack_from(buffer, offset)
            stop = offset + _HEADER.size + length
            if stop > len(buffer):
                break
            found.append((flags, buffer[offset + _HEADER.size : stop]))
            offset = stop
        self._buffer = buffer[offset:]
        return found

    @property
    def pending(self) -> int:
        """Bytes received that do not complete an envelope yet."""
        return len(self._buffer)

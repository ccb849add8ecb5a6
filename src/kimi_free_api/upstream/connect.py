"""Connect-protocol envelopes: a flags byte, a 4-byte big-endian length, then the message.

Reads arrive cut anywhere (inside the header, inside a multi-byte UTF-8 character): the decoder only hands out
whole envelopes, so the JSON inside is always decoded from complete bytes.
"""

from __future__ import annotations

import struct
import zlib

from kimi_free_api.core.errors import UpstreamError

FLAG_COMPRESSED = 0x01
FLAG_END_STREAM = 0x02  # Connect's end-of-stream envelope
FLAG_TRAILERS = 0x80  # gRPC-web's trailer frame, which some deployments answer with instead
END_FLAGS = FLAG_END_STREAM | FLAG_TRAILERS
MAX_ENVELOPE = 64 * 1024 * 1024
_HEADER = struct.Struct(">BI")


def gunzip(data: bytes, limit: int = MAX_ENVELOPE) -> bytes:
    """A compressed envelope's message, refused once it would grow past `limit`: the cap is on what comes out, so
    a few kilobytes that inflate to gigabytes (a decompression bomb) cost no more than `limit` of memory."""
    out: list[bytes] = []
    size = 0
    while data:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            part = inflater.decompress(data, limit - size + 1)
        except zlib.error as exc:
            raise UpstreamError("Kimi sent a compressed envelope that does not decompress (not valid gzip)") from exc
        size += len(part)
        if size > limit or inflater.unconsumed_tail:
            raise UpstreamError(f"Kimi sent a compressed envelope that inflates past the {limit} bytes allowed")
        if not inflater.eof:
            raise UpstreamError("Kimi sent a compressed envelope that does not decompress (cut short)")
        out.append(part)
        data = inflater.unused_data  # gzip allows several members one after another
    return b"".join(out)


def encode_envelope(message: bytes, flags: int = 0) -> bytes:
    return _HEADER.pack(flags, len(message)) + message


class EnvelopeDecoder:
    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        if self._pending:
            data = self._pending + data
        elif len(data) >= 5:
            # The usual read: exactly one whole uncompressed envelope.
            flags, length = _HEADER.unpack_from(data)
            if length == len(data) - 5 and not flags & FLAG_COMPRESSED:
                return [(flags, data[5:])]
        envelopes: list[tuple[int, bytes]] = []
        offset = 0
        end = len(data)
        while end - offset >= 5:
            flags, length = _HEADER.unpack_from(data, offset)
            if length > MAX_ENVELOPE:
                raise UpstreamError(f"Kimi sent an envelope of {length} bytes, more than the {MAX_ENVELOPE} allowed")
            stop = offset + 5 + length
            if stop > end:
                break
            message = data[offset + 5 : stop]
            if flags & FLAG_COMPRESSED:
                message = gunzip(message)
            envelopes.append((flags, message))
            offset = stop
        self._pending = data[offset:]
        return envelopes

    @property
    def has_partial(self) -> bool:
        return bool(self._pending)

"""`data:` URLs and bare base64, decoded piece by piece into a `BlobWriter`.

The request body already holds the encoded text (up to MAX_REQUEST_BYTES); decoding it in slices keeps the decoded
copy out of memory and stops at the size limit without decoding the rest. Base64 is checked strictly (alphabet and
padding); whitespace and the URL-safe alphabet, which some clients produce, are tolerated.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from kimi_free_api.core.attachments.blobs import AttachmentRejected, BlobWriter, too_large

_HEADER_MAX = 1024  # the part between "data:" and the comma
_SLICE = 4 * 1024 * 1024  # base64 characters decoded at a time (a multiple of 4)
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_MEDIA_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}")
_PARAMETER = re.compile(rf"{_TOKEN}=(?:{_TOKEN}|\"[^\"]*\")")
_WHITESPACE = re.compile(r"\s")
_URL_SAFE = str.maketrans("-_", "+/")


@dataclass(frozen=True, slots=True)
class DataUrl:
    media_type: str
    base64: bool
    start: int  # where the data begins in the URL


def _invalid(reason: str) -> AttachmentRejected:
    return AttachmentRejected(reason, "invalid_data_url")


def parse_data_url(url: str) -> DataUrl:
    """The header of a `data:[<media type>][;param=value]*[;base64],<data>` URL (RFC 2397)."""
    if url[:5].lower() != "data:":
        raise _invalid("it is not a data: URL")
    comma = url.find(",", 5, 5 + _HEADER_MAX)
    if comma < 0:
        raise _invalid("the data: URL has no comma before its data")
    media_type, *params = url[5:comma].split(";")
    media_type = media_type.strip().lower() or "text/plain"
    if not _MEDIA_TYPE.fullmatch(media_type):
        raise _invalid(f"the data: URL's media type {media_type[:60]!r} is not valid")
    is_base64 = bool(params) and params[-1].strip().lower() == "base64"
    for param in params[:-1] if is_base64 else params:
        if not _PARAMETER.fullmatch(param.strip()):
            raise _invalid(f"the data: URL's parameter {param[:60]!r} is not valid")
    return DataUrl(media_type, is_base64, comma + 1)


async def decode_data_url(url: str, writer: BlobWriter, limit: int) -> None:
    """Decodes the URL's data into `writer` (its declared media type is checked, not believed: the bytes are
    sniffed later)."""
    header = parse_data_url(url)
    if header.base64:
        await decode_base64(url, writer, limit, header.start)
    else:
        await writer.write(unquote_to_bytes(url[header.start :]))


async def decode_base64(text: str, writer: BlobWriter, limit: int, start: int = 0) -> None:
    """Decodes `text[start:]` (standard or URL-safe base64, padding optional) into `writer`."""
    if _WHITESPACE.search(text, start):
        text, start = _WHITESPACE.sub("", text[start:]), 0
    if "-" in text or "_" in text:
        text = text.translate(_URL_SAFE)
    length = len(text) - start
    if not length:
        raise _invalid("the base64 data is empty")
    if length % 4 == 1:
        raise _invalid("the base64 data is cut short (its length is not possible for base64)")
    if length * 3 // 4 > limit + 2:
        raise too_large(limit)  # known before decoding anything
    padding = "=" * (-length % 4)
    for offset in range(start, len(text), _SLICE):
        piece = text[offset : offset + _SLICE]
        if offset + _SLICE >= len(text):
            piece += padding
        try:
            await writer.write(binascii.a2b_base64(piece, strict_mode=True))
        except binascii.Error as exc:
            raise _invalid(f"the base64 data is not valid ({exc})") from exc

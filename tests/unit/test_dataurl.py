"""data: URLs and bare base64, validated and decoded into a blob."""

from __future__ import annotations

import base64

import pytest

from kimi_free_api.core.attachments.blobs import AttachmentRejected, BlobWriter
from kimi_free_api.fetch.dataurl import DataUrl, decode_base64, decode_data_url, parse_data_url

DATA = bytes(range(256)) * 40


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("data:image/png;base64,AAAA", DataUrl("image/png", True, 22)),
        ("DATA:Image/PNG;BASE64,AAAA", DataUrl("image/png", True, 22)),
        ("data:text/plain;charset=utf-8;base64,AAAA", DataUrl("text/plain", True, 37)),
        ('data:text/plain;name="a b.txt";base64,AAAA', DataUrl("text/plain", True, 38)),
        ("data:,hello", DataUrl("text/plain", False, 6)),
        ("data:application/vnd.ms-excel,x", DataUrl("application/vnd.ms-excel", False, 30)),
    ],
)
def test_parse_data_url(url: str, expected: DataUrl) -> None:
    assert parse_data_url(url) == expected


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://x/y", "not a data: URL"),
        ("data:image/png;base64", "no comma"),
        ("data:image/png" + "x" * 2000 + ",AAAA", "no comma"),
        ("data:image png;base64,AAAA", "media type"),
        ("data:image;base64,AAAA", "media type"),
        ("data:image/png;charset;base64,AAAA", "parameter"),
    ],
)
def test_malformed_data_urls(url: str, reason: str) -> None:
    with pytest.raises(AttachmentRejected) as caught:
        parse_data_url(url)
    assert caught.value.code == "invalid_data_url"
    assert reason in caught.value.reason


async def _decoded(text: str, limit: int = 1 << 20) -> bytes:
    writer = BlobWriter(limit)
    try:
        await decode_base64(text, writer, limit)
        blob = await writer.finish()
    except BaseException:
        writer.discard()
        raise
    try:
        return b"".join([chunk async for chunk in blob.chunks()])
    finally:
        blob.close()


@pytest.mark.parametrize(
    "text",
    [
        base64.b64encode(DATA).decode(),
        base64.b64encode(DATA).decode().rstrip("="),  # padding left out
        base64.urlsafe_b64encode(DATA).decode(),  # URL-safe alphabet
        base64.encodebytes(DATA).decode(),  # MIME line breaks
    ],
)
async def test_base64_variants_decode(text: str) -> None:
    assert await _decoded(text) == DATA


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("A", "cut short"),
        ("AAAA@@@@", "not valid"),
        ("AA==AA==", "not valid"),
    ],
)
async def test_bad_base64_is_refused(text: str, reason: str) -> None:
    with pytest.raises(AttachmentRejected) as caught:
        await _decoded(text)
    assert caught.value.code == "invalid_data_url"
    assert reason in caught.value.reason


async def test_oversized_base64_is_refused_before_decoding() -> None:
    writer = BlobWriter(1000)
    with pytest.raises(AttachmentRejected) as caught:
        await decode_base64("A" * 2000, writer, 1000)
    assert (caught.value.code, writer.size) == ("attachment_too_large", 0)
    writer.discard()


async def test_data_urls_decode_base64_and_percent_encoding() -> None:
    for url, expected in (
        ("data:application/octet-stream;base64," + base64.b64encode(DATA).decode(), DATA),
        ("data:text/plain,caf%C3%A9%20au%20lait", "café au lait".encode()),
    ):
        writer = BlobWriter(1 << 20)
        await decode_data_url(url, writer, 1 << 20)
        blob = await writer.finish()
        assert b"".join([chunk async for chunk in blob.chunks()]) == expected
        blob.close()

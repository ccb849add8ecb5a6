"""Typing files by their bytes, naming them, and collecting their bytes (capped, hashed, spooled)."""

from __future__ import annotations

import hashlib
import zipfile
from io import BytesIO

import pytest

from kimi_free_api.core.attachments import sniff
from kimi_free_api.core.attachments.blobs import SPOOL_MEMORY_BYTES, AttachmentRejected, Blob, BlobWriter
from kimi_free_api.core.attachments.files import identify
from tests.fileserver import pdf, png


def _zip(*names: str) -> bytes:
    out = BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name in names:
            archive.writestr(name, "<x/>")
    return out.getvalue()


def _epub() -> bytes:
    out = BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        archive.writestr("META-INF/container.xml", "<x/>")
    return out.getvalue()


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (png(), sniff.PNG),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", sniff.JPEG),
        (b"GIF89a\x01\x00\x01\x00", sniff.GIF),
        (b"GIF87a\x01\x00\x01\x00", sniff.GIF),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", sniff.WEBP),
        (b"BM\x3a\x00\x00\x00\x00\x00\x00\x00\x36\x00", sniff.BMP),
        (b"II*\x00\x08\x00\x00\x00", sniff.TIFF),
        (b"MM\x00*\x00\x00\x00\x08", sniff.TIFF),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", sniff.HEIC),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00", sniff.AVIF),
        (pdf(), sniff.PDF),
        (_zip("[Content_Types].xml", "word/document.xml"), sniff.DOCX),
        (_zip("[Content_Types].xml", "xl/workbook.xml"), sniff.XLSX),
        (_zip("[Content_Types].xml", "ppt/presentation.xml"), sniff.PPTX),
        (_epub(), sniff.EPUB),
        (_zip("a.txt"), sniff.ZIP),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00", sniff.OLE),
        ("plain text, 中文 ✨".encode(), sniff.TEXT),
        (b"BM is also how a text can start", sniff.TEXT),
        ("\ufeffUTF-16 text".encode("utf-16-le"), sniff.TEXT),
        # not something Kimi reads
        (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00isom", None),  # MP4 video
        (b"\x7fELF\x02\x01\x01\x00\x00\x00", None),
        (b"MZ\x90\x00\x03\x00\x00\x00", None),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", None),
        (b"", None),
    ],
)
def test_sniff(head: bytes, expected: sniff.FileType | None) -> None:
    assert sniff.sniff(head[:8192]) == expected


@pytest.mark.parametrize(
    ("kind", "name", "expected"),
    [
        (sniff.PNG, "photo", "photo.png"),
        (sniff.PNG, "photo.PNG", "photo.PNG"),
        (sniff.PNG, "photo.php", "photo.php.png"),  # a URL's name does not decide the type
        (sniff.JPEG, "a.jpeg", "a.jpeg"),
        (sniff.PDF, "report.pdf", "report.pdf"),
        (sniff.PDF, "report.txt", "report.txt.pdf"),
        (sniff.OLE, "book.xls", "book.xls"),
        (sniff.TEXT, "main.py", "main.py"),
        (sniff.TEXT, "notes", "notes.txt"),
        (sniff.ZIP, "archive.xlsx", "archive.xlsx"),
    ],
)
def test_file_names_agree_with_the_type(kind: sniff.FileType, name: str, expected: str) -> None:
    assert kind.file_name(name) == expected


async def _blob(data: bytes, limit: int = 1 << 30, piece: int = 100_000) -> Blob:
    writer = BlobWriter(limit)
    for start in range(0, len(data), piece):
        await writer.write(data[start : start + piece])
    return await writer.finish()


async def test_blobs_count_hash_spool_and_read_back() -> None:
    data = bytes(range(256)) * (3 * SPOOL_MEMORY_BYTES // 256 + 7)  # past the memory buffer: spooled to disk
    blob = await _blob(data)
    try:
        assert (blob.size, blob.sha256, blob.head) == (len(data), hashlib.sha256(data).hexdigest(), data[:8192])
        assert b"".join([chunk async for chunk in blob.chunks()]) == data
        assert b"".join([chunk async for chunk in blob.chunks(size=4096)]) == data, "each read starts over"
    finally:
        blob.close()


async def test_a_blob_writer_stops_as_soon_as_the_limit_is_passed() -> None:
    writer = BlobWriter(limit=1000)
    await writer.write(b"x" * 600)
    await writer.write(b"x" * 400)
    with pytest.raises(AttachmentRejected) as caught:
        await writer.write(b"x")
    writer.discard()
    assert caught.value.code == "attachment_too_large"
    assert caught.value.reason == "it is larger than the 1000 bytes limit"


async def test_identify_names_and_types_by_content() -> None:
    blob = await _blob(png())
    try:
        file = identify(blob, "", "attachment-3")
        assert (file.name, file.type) == ("attachment-3.png", sniff.PNG)
        assert identify(blob, "dir/../we\x00ird\\name.gif", "x").name == "dir_.._we_ird_name.gif.png"
    finally:
        blob.close()
    for data, code in ((b"", "empty_attachment"), (b"\x7fELF\x02\x00", "unsupported_attachment_type")):
        blob = await _blob(data)
        with pytest.raises(AttachmentRejected) as caught:
            identify(blob, "f", "x")
        blob.close()
        assert caught.value.code == code

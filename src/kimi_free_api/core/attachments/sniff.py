"""What a file is, judged by its first bytes (magic numbers), never by its URL, name or declared type.

Clients label files wrongly all the time (an image URL ending in `.php`, `application/octet-stream` for a PDF), and
whether Kimi treats an attachment as an image or as a document depends on this answer. Text has no magic number:
anything without NUL bytes (or with a UTF-16 byte-order mark) counts as text. Audio, video, executables and other
binary data are not something Kimi reads, so they get None.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath


@dataclass(frozen=True, slots=True)
class FileType:
    media_type: str
    # File name suffixes of this type; the first is given to a name that lacks the right one.
    suffixes: tuple[str, ...]
    image: bool = False
    # Whether any suffix goes: text can be any source or data file, and a zip may hold any format.
    any_suffix: bool = False

    def file_name(self, name: str) -> str:
        """`name` with a suffix Kimi recognises as this type (Kimi picks its parser by the suffix)."""
        suffix = PurePosixPath(name).suffix.lower()
        if suffix and (self.any_suffix or suffix in self.suffixes):
            return name
        return name + self.suffixes[0]


PNG = FileType("image/png", (".png",), image=True)
JPEG = FileType("image/jpeg", (".jpg", ".jpeg", ".jpe", ".jfif"), image=True)
GIF = FileType("image/gif", (".gif",), image=True)
WEBP = FileType("image/webp", (".webp",), image=True)
BMP = FileType("image/bmp", (".bmp", ".dib"), image=True)
TIFF = FileType("image/tiff", (".tiff", ".tif"), image=True)
HEIC = FileType("image/heic", (".heic", ".heif"), image=True)
AVIF = FileType("image/avif", (".avif",), image=True)
PDF = FileType("application/pdf", (".pdf",))
DOCX = FileType("application/vnd.openxmlformats-officedocument.wordprocessingml.document", (".docx", ".docm"))
XLSX = FileType("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (".xlsx", ".xlsm"))
PPTX = FileType("application/vnd.openxmlformats-officedocument.presentationml.presentation", (".pptx", ".pptm"))
EPUB = FileType("application/epub+zip", (".epub",))
ZIP = FileType("application/zip", (".zip",), any_suffix=True)
# Word, Excel and PowerPoint files before 2007 share one container format; the name tells them apart.
OLE = FileType("application/msword", (".doc", ".xls", ".ppt", ".msg"))
TEXT = FileType("text/plain", (".txt",), any_suffix=True)

_PREFIXES: tuple[tuple[bytes, FileType], ...] = (
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"\xff\xd8\xff", JPEG),
    (b"GIF87a", GIF),
    (b"GIF89a", GIF),
    (b"II*\x00", TIFF),
    (b"MM\x00*", TIFF),
    (b"%PDF-", PDF),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", OLE),
)
# ISO media files (`....ftyp<brand>`) are images only with these brands; the others are video.
_IMAGE_BRANDS = {
    **dict.fromkeys((b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1"), HEIC),
    **dict.fromkeys((b"avif", b"avis"), AVIF),
}
# Office Open XML packages name their parts in the zip's local headers near the start of the file.
_OOXML_PARTS = ((b"word/", DOCX), (b"xl/", XLSX), (b"ppt/", PPTX))
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _zip_type(head: bytes) -> FileType:
    if head[30:58] == b"mimetypeapplication/epub+zip":
        return EPUB
    for marker, kind in _OOXML_PARTS:
        if marker in head:
            return kind
    return ZIP


def sniff(head: bytes) -> FileType | None:
    """The type of a file from its first bytes (a few KiB are plenty); None for what Kimi cannot read."""
    for prefix, kind in _PREFIXES:
        if head.startswith(prefix):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[:2] == b"BM" and head[6:10] == b"\x00\x00\x00\x00":
        return BMP
    if head[4:8] == b"ftyp":
        return _IMAGE_BRANDS.get(head[8:12])
    if head[:4] == b"PK\x03\x04":
        return _zip_type(head)
    if head.startswith(_UTF16_BOMS) or (head and b"\x00" not in head):
        return TEXT
    return None

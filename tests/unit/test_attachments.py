"""The core's attachment handling with fake loaders and uploaders: parsing parts, numbering, deduplication,
placeholders, file ownership, cleanup and error wording."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kimi_free_api.api.openai.schemas import parse_chat_request
from kimi_free_api.api.parts import attachment_ref
from kimi_free_api.core.attachments.attachments import (
    AttachmentLimits,
    Attachments,
    Download,
    all_or_nothing,
    shown_source,
    with_placeholders,
)
from kimi_free_api.core.attachments.blobs import AttachmentRejected, Blob, BlobWriter
from kimi_free_api.core.attachments.files import FileService, InMemoryFileRegistry, LoadedFile
from kimi_free_api.core.errors import GatewayError, InvalidRequest, NotFound, RateLimited
from kimi_free_api.core.owners import SEED, key_owner
from kimi_free_api.core.request import AttachmentRef, Message
from tests.fileserver import pdf, png

ALICE, BOB = "alice-token", "bob-token"


async def _blob(data: bytes) -> Blob:
    writer = BlobWriter(1 << 24)
    await writer.write(data)
    return await writer.finish()


class FakeLoader:
    """Serves `sources[value]`; counts loads; can fail a given source."""

    def __init__(self, sources: dict[str, bytes], fail: dict[str, AttachmentRejected] | None = None) -> None:
        self.sources = sources
        self.fail = fail or {}
        self.loads: list[str] = []
        self.blobs: list[Blob] = []

    async def load(self, ref: AttachmentRef) -> Download:
        self.loads.append(ref.value)
        await asyncio.sleep(0)
        if ref.value in self.fail:
            raise self.fail[ref.value]
        blob = await _blob(self.sources[ref.value])
        self.blobs.append(blob)
        return Download(blob, ref.value.rsplit("/", 1)[-1])


class FakeUploader:
    def __init__(self, error: GatewayError | None = None) -> None:
        self.uploads: list[tuple[str, str]] = []
        self.error = error

    async def upload_file(self, token: str, file: LoadedFile) -> str:
        if self.error is not None:
            raise self.error
        self.uploads.append((token, file.name))
        return f"kimi-{len(self.uploads)}"


def _attachments(loader: FakeLoader, uploader: FakeUploader, max_attachments: int = 10) -> Attachments:
    files = FileService(InMemoryFileRegistry(), uploader, 1 << 24)
    return Attachments(loader, uploader, files, AttachmentLimits(max_attachments=max_attachments))


def _messages(*contents: list[dict[str, Any] | str]) -> tuple[Message, ...]:
    """User messages of text (given as strings) and attachment parts, as the API layer parses them."""
    parts = [[{"type": "text", "text": p} if isinstance(p, str) else p for p in content] for content in contents]
    return parse_chat_request({"messages": [{"role": "user", "content": c} for c in parts]}, (ALICE,)).messages


def _image(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def _file_id(file_id: str) -> dict[str, Any]:
    return {"type": "file", "file": {"file_id": file_id}}


@pytest.mark.parametrize(
    ("content", "labels", "expected"),
    [
        ("", [(0, "[1]")], "[1]"),
        ("A\nB", [(1, "[1]")], "A\n[1]\nB"),
        ("B", [(0, "[1]")], "[1]\nB"),
        ("A", [(1, "[1]")], "A\n[1]"),
        ("A", [(1, "[1]"), (1, "[2]")], "A\n[1]\n[2]"),
        ("B", [(1, "[2]"), (0, "[1]")], "[1]\nB\n[2]"),
        ("A\n\nB", [(1, "[1]")], "A\n[1]\n\nB"),
        ("text", [], "text"),
    ],
)
def test_placeholders_sit_on_lines_of_their_own(content: str, labels: list[tuple[int, str]], expected: str) -> None:
    assert with_placeholders(content, labels) == expected


def test_parts_record_where_attachments_sat() -> None:
    [message] = _messages(
        [
            {"type": "text", "text": "one"},
            _image("https://example.com/a.png"),
            {"type": "text", "text": "two"},
            {"type": "file", "file_url": {"url": "data:text/plain,x"}},
            {"type": "file", "file": {"file_data": "QUJD", "filename": "abc.txt"}},
            _file_id("file-1"),
        ]
    )
    assert message.content == "one\ntwo"
    assert [(a.kind, a.filename, a.param, a.offset) for a in message.attachments] == [
        ("url", None, "messages[0].content[1]", 3),
        ("url", None, "messages[0].content[3]", 7),
        ("base64", "abc.txt", "messages[0].content[4]", 7),
        ("file_id", None, "messages[0].content[5]", 7),
    ]


@pytest.mark.parametrize(
    ("part", "code"),
    [
        ({"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}, "invalid_attachment_url"),
        ({"type": "image_url", "image_url": {"url": "http:///nohost"}}, "invalid_attachment_url"),
        ({"type": "image_url", "image_url": {"url": "http://[::1"}}, "invalid_attachment_url"),
        ({"type": "image_url", "image_url": {}}, "invalid_attachment"),
        ({"type": "file", "file": {"filename": "x"}}, "invalid_attachment"),
        ({"type": "file"}, "invalid_attachment"),
    ],
)
def test_malformed_parts(part: dict[str, Any], code: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        attachment_ref(part, "messages[0].content[0]", 0)
    assert (caught.value.code, caught.value.param) == (code, "messages[0].content[0]")


@pytest.mark.parametrize(
    ("ref", "shown"),
    [
        (
            AttachmentRef("url", "https://user:pw@Example.com:8443/a/b.pdf?sig=SECRET#x"),
            "https://example.com:8443/a/b.pdf",
        ),
        (AttachmentRef("url", "http://[::1]:81/x"), "http://[::1]:81/x"),
        (AttachmentRef("url", "https://h/" + "p" * 300), "https://h/" + "p" * 109 + "…"),
        (AttachmentRef("url", "data:image/png;base64,AAAA"), "a data: URL"),
        (AttachmentRef("base64", "AAAA"), "base64 data"),
        (AttachmentRef("file_id", "file-1"), "file-1"),
    ],
)
def test_sources_are_shown_without_secrets(ref: AttachmentRef, shown: str) -> None:
    assert shown_source(ref) == shown


async def test_duplicates_load_once_and_share_a_number() -> None:
    loader = FakeLoader({"https://x/a.png": png(), "https://y/copy.png": png(), "https://x/b.pdf": pdf()})
    uploader = FakeUploader()
    messages = _messages(
        ["Look", _image("https://x/a.png")],
        [_image("https://x/a.png"), _image("https://y/copy.png"), "and", _image("https://x/b.pdf")],
    )
    async with _attachments(loader, uploader).prepare(messages, (ALICE,)) as turn:
        assert [m.content for m in turn.messages] == [
            "Look\n[attachment 1: a.png]",
            "[attachment 1: a.png]\n[attachment 1: a.png]\nand\n[attachment 2: b.pdf]",
        ]
        assert await turn.kimi_files(ALICE) == ("kimi-1", "kimi-2")
        assert await turn.kimi_files(ALICE) == ("kimi-1", "kimi-2"), "uploaded once per account"
        assert await turn.kimi_files(BOB) == ("kimi-3", "kimi-4"), "a retry on another account uploads again"
        assert turn.tokens == (ALICE,)
    assert sorted(loader.loads) == ["https://x/a.png", "https://x/b.pdf", "https://y/copy.png"]
    assert [name for _, name in uploader.uploads] == ["a.png", "b.pdf", "a.png", "b.pdf"]
    assert all(blob._spool.closed for blob in loader.blobs), "the bytes are released afterwards"


async def test_a_failed_load_names_the_attachment_and_releases_the_others() -> None:
    failure = AttachmentRejected("it is larger than the 1 MiB limit", "attachment_too_large")
    loader = FakeLoader({"https://x/a.png": png()}, fail={"https://x/big.bin?t=SECRET": failure})
    messages = _messages([_image("https://x/a.png"), "text", _image("https://x/big.bin?t=SECRET")])
    with pytest.raises(InvalidRequest) as caught:
        async with _attachments(loader, FakeUploader()).prepare(messages, (ALICE,)):
            pytest.fail("not reached")
    assert (caught.value.param, caught.value.code) == ("messages[0].content[2]", "attachment_too_large")
    assert caught.value.message == (
        "The attachment at messages[0].content[2] (https://x/big.bin) cannot be used: "
        "it is larger than the 1 MiB limit."
    )
    assert all(blob._spool.closed for blob in loader.blobs)


async def test_upload_failures_keep_their_class_and_name_the_attachment() -> None:
    loader = FakeLoader({"https://x/a.png": png()})
    uploader = FakeUploader(RateLimited("Kimi is rate limiting this account", retry_after=3))
    async with _attachments(loader, uploader).prepare(_messages([_image("https://x/a.png")]), (ALICE,)) as turn:
        with pytest.raises(RateLimited) as caught:
            await turn.kimi_files(ALICE)
    assert caught.value.message.startswith("The attachment at messages[0].content[0] (https://x/a.png): Kimi is")
    assert (caught.value.param, caught.value.retry_after) == ("messages[0].content[0]", 3)


async def test_too_many_attachments_are_refused_before_loading() -> None:
    loader = FakeLoader({})
    messages = _messages([_image("https://x/1"), _image("https://x/2")], [_image("https://x/3")])
    with pytest.raises(InvalidRequest) as caught:
        async with _attachments(loader, FakeUploader(), max_attachments=2).prepare(messages, (ALICE,)):
            pytest.fail("not reached")
    assert (caught.value.code, caught.value.param) == ("too_many_attachments", "messages[1].content[0]")
    assert loader.loads == []


async def test_uploaded_files_tie_the_chat_to_their_account() -> None:
    uploader = FakeUploader()
    service = FileService(InMemoryFileRegistry(), uploader, 1 << 24)
    attachments = Attachments(FakeLoader({}), uploader, service, AttachmentLimits())
    mine = await service.upload(ALICE, SEED, await _blob(pdf()), "mine.pdf", "user_data")
    theirs = await service.upload(BOB, SEED, await _blob(png()), "", "vision")
    assert (theirs.filename, theirs.purpose) == ("upload.png", "vision")
    async with attachments.prepare(_messages(["Read", _file_id(mine.id)]), (BOB, ALICE)) as turn:
        assert turn.tokens == (ALICE,)
        assert turn.messages[0].content == "Read\n[attachment 1: mine.pdf]"
        assert await turn.kimi_files(ALICE) == (mine.kimi_id,)
    assert len(uploader.uploads) == 2, "files from the Files API are not uploaded again"

    for messages, tokens, code in (
        (_messages([_file_id(mine.id)]), (BOB,), "file_not_found"),
        (_messages([_file_id(mine.id), _file_id(theirs.id)]), (ALICE, BOB), "file_account_mismatch"),
    ):
        with pytest.raises(GatewayError) as caught:
            async with attachments.prepare(messages, tokens):
                pytest.fail("not reached")
        assert caught.value.code == code
    assert await service.find((BOB,), SEED, mine.id) is None
    assert await service.delete((BOB,), SEED, mine.id) is False
    assert [f.id for f in await service.list((ALICE, BOB), SEED)] == [mine.id, theirs.id]
    assert await service.delete((ALICE,), SEED, mine.id) is True
    assert await service.find((ALICE,), SEED, mine.id) is None


async def test_files_uploaded_with_an_api_key_are_that_keys_on_the_shared_account() -> None:
    uploader = FakeUploader()
    service = FileService(InMemoryFileRegistry(), uploader, 1 << 24)
    attachments = Attachments(FakeLoader({}), uploader, service, AttachmentLimits())
    key_a, key_b = key_owner("kfa-key-a"), key_owner("kfa-key-b")
    mine = await service.upload(ALICE, key_a, await _blob(pdf()), "mine.pdf", "user_data")
    assert await service.find((ALICE,), key_a, mine.id) == mine
    for owner in (key_b, SEED):  # another key, or a client holding the server's Kimi token itself
        assert await service.find((ALICE,), owner, mine.id) is None
        assert await service.list((ALICE,), owner) == []
        assert await service.delete((ALICE,), owner, mine.id) is False
        with pytest.raises(NotFound) as caught:
            async with attachments.prepare(_messages([_file_id(mine.id)]), (ALICE,), owner):
                pytest.fail("not reached")
        assert (caught.value.status, caught.value.code) == (404, "file_not_found")
    async with attachments.prepare(_messages([_file_id(mine.id)]), (ALICE,), key_a) as turn:
        assert turn.tokens == (ALICE,)


async def test_all_or_nothing_cancels_the_rest_on_the_first_failure() -> None:
    started: list[int] = []
    finished: list[int] = []

    def job(number: int) -> Any:
        async def run() -> int:
            started.append(number)
            if number == 2:
                raise ValueError("two")
            await asyncio.sleep(0.05 if number else 0)
            finished.append(number)
            return number

        return run

    assert await all_or_nothing([job(0), job(1)], parallel=2) == [0, 1]
    started.clear()
    finished.clear()
    with pytest.raises(ValueError, match="two"):
        await all_or_nothing([job(1), job(2), job(3)], parallel=2)
    await asyncio.sleep(0.1)
    assert finished == [], "the others were cancelled, not left running"
    assert await all_or_nothing([], parallel=2) == []

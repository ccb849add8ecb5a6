"""A chat's attachments: from the parts of user messages to files Kimi has parsed, ready for the Chat request.

The work is ordered so that a failure leaves nothing behind that anything refers to:

1. `prepare` loads every attachment of the messages being sent (fetched or decoded in parallel, checked for size
   and type), before any account is chosen. Identical content (same sha256) is one attachment however often it
   appears; ids from `POST /v1/files` are looked up instead, and restrict the chat to the account that uploaded
   them. More than `max_attachments` parts is refused before anything is fetched.
2. Each message gets a placeholder `[attachment N: name]` where its attachment sat, so the transcript keeps the
   order of text and files. When a Kimi chat is continued, only the new messages are given here, so only their
   attachments are uploaded: Kimi holds the earlier ones.
3. `PreparedTurn.kimi_files(token)` uploads with the chosen account, once per account (a retry on another
   account uploads again: a Kimi file belongs to the account that uploaded it), before the Chat request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

from kimi_free_api.core.attachments.blobs import AttachmentRejected, Blob, BlobWriter
from kimi_free_api.core.attachments.files import FileService, FileUploader, LoadedFile, StoredFile, identify, owner_of
from kimi_free_api.core.attachments.sniff import TEXT
from kimi_free_api.core.errors import GatewayError, InvalidRequest, NotFound
from kimi_free_api.core.owners import SEED
from kimi_free_api.core.request import AttachmentRef, Message

_T = TypeVar("_T")
_SHOWN_URL_CHARS = 120


@dataclass(frozen=True, slots=True)
class Download:
    blob: Blob
    name: str  # the name the source suggests (a URL's last path segment), or ""


class AttachmentLoader(Protocol):
    async def load(self, ref: AttachmentRef) -> Download:
        """The bytes of a `url` or `base64` reference. Raises `AttachmentRejected`."""
        ...


@dataclass(frozen=True, slots=True)
class AttachmentLimits:
    max_attachments: int = 10
    parallel: int = 4  # downloads (and uploads) at a time for one request


def shown_source(ref: AttachmentRef) -> str:
    """The source of an attachment as an error message may show it: no credentials, query or fragment."""
    if ref.kind == "file_id":
        return ref.value
    if ref.kind == "base64":
        return "base64 data"
    if ref.value[:5].lower() == "data:":
        return "a data: URL"
    parts = urlsplit(ref.value)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    shown = f"{parts.scheme}://{host}{port}{parts.path}"
    return shown if len(shown) <= _SHOWN_URL_CHARS else shown[: _SHOWN_URL_CHARS - 1] + "…"


def describe(ref: AttachmentRef) -> str:
    details = ", ".join(filter(None, (ref.filename, shown_source(ref))))
    return f"The attachment at {ref.param} ({details})"


def relabel(error: GatewayError, ref: AttachmentRef) -> GatewayError:
    """The same failure, saying which attachment it concerns."""
    return type(error)(
        f"{describe(ref)}: {error.message}", param=ref.param, code=error.code, retry_after=error.retry_after
    )


def rejected(error: AttachmentRejected, ref: AttachmentRef) -> InvalidRequest:
    return InvalidRequest(f"{describe(ref)} cannot be used: {error.reason}.", param=ref.param, code=error.code)


def _on_lines(before: str, after: str) -> str:
    """`before` then `after`, with a line break between them unless one is already there."""
    if before and after and not before.endswith("\n") and not after.startswith("\n"):
        return f"{before}\n{after}"
    return before + after


def with_placeholders(content: str, labels: Sequence[tuple[int, str]]) -> str:
    """`content` with each label on a line of its own at its offset (offsets as in `AttachmentRef.offset`)."""
    out = ""
    position = 0
    for offset, label in sorted(labels, key=lambda item: item[0]):
        out = _on_lines(_on_lines(out, content[position:offset]), label)
        position = offset
    return _on_lines(out, content[position:])


async def all_or_nothing(jobs: Sequence[Callable[[], Awaitable[_T]]], parallel: int) -> list[_T]:
    """Runs the jobs, `parallel` at a time; the first failure cancels the rest and is raised."""
    gate = asyncio.Semaphore(parallel)

    async def gated(job: Callable[[], Awaitable[_T]]) -> _T:
        async with gate:
            return await job()

    if not jobs:
        return []
    tasks = [asyncio.ensure_future(gated(job)) for job in jobs]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            error = task.exception() if task.done() else None
            if error is not None:
                raise error
        return [task.result() for task in tasks]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@dataclass(frozen=True, slots=True)
class _Entry:
    """One distinct attachment: bytes to upload, or a file Kimi already has (`kimi_id`)."""

    number: int
    ref: AttachmentRef
    name: str
    loaded: LoadedFile | None = None
    kimi_id: str = ""

    @property
    def label(self) -> str:
        return f"[attachment {self.number}: {self.name}]"


class PreparedTurn:
    """The messages to send, with placeholders; the accounts allowed to answer; the uploads per account."""

    def __init__(
        self,
        messages: tuple[Message, ...],
        tokens: tuple[str, ...],
        entries: list[_Entry],
        uploader: FileUploader,
        parallel: int,
    ) -> None:
        self.messages = messages
        self.tokens = tokens
        self._entries = entries
        self._uploader = uploader
        self._parallel = parallel
        self._uploaded: dict[str, tuple[str, ...]] = {}

    async def kimi_files(self, token: str) -> tuple[str, ...]:
        """Kimi's file ids, in attachment order, uploading with the account of `token` the first time."""
        if token not in self._uploaded:
            ids = await all_or_nothing([self._upload_job(entry, token) for entry in self._entries], self._parallel)
            self._uploaded[token] = tuple(ids)
        return self._uploaded[token]

    def _upload_job(self, entry: _Entry, token: str) -> Callable[[], Awaitable[str]]:
        async def job() -> str:
            if entry.loaded is None:
                return entry.kimi_id
            try:
                return await self._uploader.upload_file(token, entry.loaded)
            except GatewayError as exc:
                raise relabel(exc, entry.ref) from exc

        return job


class Attachments:
    def __init__(
        self, loader: AttachmentLoader, uploader: FileUploader, files: FileService, limits: AttachmentLimits
    ) -> None:
        self._loader = loader
        self._uploader = uploader
        self._files = files
        self._limits = limits

    @contextlib.asynccontextmanager
    async def prepare(
        self, messages: Sequence[Message], tokens: tuple[str, ...], key_owner: str = SEED
    ) -> AsyncIterator[PreparedTurn]:
        """Loads the attachments of `messages` (see the module docstring); the bytes are released afterwards.
        Uploaded files are looked up among those of `tokens` uploaded with `key_owner` (core/owners.py)."""
        refs = [ref for message in messages for ref in message.attachments]
        self._check_count(refs)
        stored = {ref.value: await self._stored(ref, tokens, key_owner) for ref in refs if ref.kind == "file_id"}
        allowed = _owner_tokens(refs, stored, tokens, key_owner)
        sources: dict[tuple[str, str], AttachmentRef] = {(r.kind, r.value): r for r in refs if r.kind != "file_id"}
        files = await self._load_all(list(sources.values()))
        try:
            entries, entry_of = _distinct(refs, dict(zip(sources, files, strict=True)), stored)
            sent = tuple(
                replace(m, content=with_placeholders(m.content, [(r.offset, entry_of[r].label) for r in m.attachments]))
                if m.attachments
                else m
                for m in messages
            )
            yield PreparedTurn(sent, allowed, entries, self._uploader, self._limits.parallel)
        finally:
            for file in files:
                file.blob.close()

    async def upload_text(self, token: str, name: str, text: str) -> str:
        """Uploads a text the gateway wrote itself (an oversized history) with the account of `token`: Kimi's id."""
        data = text.encode()
        writer = BlobWriter(len(data))
        try:
            await writer.write(data)
        except BaseException:
            writer.discard()
            raise
        blob = await writer.finish()
        try:
            return await self._uploader.upload_file(token, LoadedFile(blob, name, TEXT))
        finally:
            blob.close()

    def _check_count(self, refs: list[AttachmentRef]) -> None:
        limit = self._limits.max_attachments
        if len(refs) > limit:
            raise InvalidRequest(
                f"Too many attachments: at most {limit} per request (MAX_ATTACHMENTS); {refs[limit].param} is one "
                "more.",
                param=refs[limit].param,
                code="too_many_attachments",
            )

    async def _load_all(self, refs: list[AttachmentRef]) -> list[LoadedFile]:
        """All or nothing; what loaded before a failure is released here, since the caller never sees it."""
        done: list[LoadedFile] = []

        def job(number: int, ref: AttachmentRef) -> Callable[[], Awaitable[LoadedFile]]:
            async def run() -> LoadedFile:
                file = await self._load(number, ref)
                done.append(file)
                return file

            return run

        try:
            return await all_or_nothing([job(n, ref) for n, ref in enumerate(refs, 1)], self._limits.parallel)
        except BaseException:
            for file in done:
                file.blob.close()
            raise

    async def _load(self, number: int, ref: AttachmentRef) -> LoadedFile:
        try:
            download = await self._loader.load(ref)
        except AttachmentRejected as exc:
            raise rejected(exc, ref) from exc
        try:
            return identify(download.blob, ref.filename or download.name, f"attachment-{number}")
        except AttachmentRejected as exc:
            download.blob.close()
            raise rejected(exc, ref) from exc

    async def _stored(self, ref: AttachmentRef, tokens: tuple[str, ...], key_owner: str) -> StoredFile:
        file = await self._files.find(tokens, key_owner, ref.value)
        if file is None:
            # As on GET /v1/files/{id}: another client's file and no file at all look the same.
            raise NotFound(
                f"{describe(ref)} cannot be used: no file with this id was uploaded with this request's credentials "
                "(a file can only be used by the API key or Kimi account that uploaded it).",
                param=ref.param,
                code="file_not_found",
            )
        return file


def _distinct(
    refs: list[AttachmentRef], loaded: dict[tuple[str, str], LoadedFile], stored: dict[str, StoredFile]
) -> tuple[list[_Entry], dict[AttachmentRef, _Entry]]:
    """Numbers the attachments in order of appearance; content seen before (same sha256) keeps its number."""
    entries: list[_Entry] = []
    entry_of: dict[AttachmentRef, _Entry] = {}
    by_sha: dict[str, _Entry] = {}
    for ref in refs:
        number = len(entries) + 1
        file = loaded.get((ref.kind, ref.value))
        if file is not None:
            candidate, sha = _Entry(number, ref, file.name, loaded=file), file.blob.sha256
        else:
            known = stored[ref.value]
            candidate, sha = _Entry(number, ref, known.filename, kimi_id=known.kimi_id), known.sha256
        entry = by_sha.setdefault(sha, candidate)
        if entry is candidate:
            entries.append(entry)
        entry_of[ref] = entry
    return entries, entry_of


def _owner_tokens(
    refs: list[AttachmentRef], stored: dict[str, StoredFile], tokens: tuple[str, ...], key_owner: str
) -> tuple[str, ...]:
    """The client's tokens that may answer: with uploaded files referenced, only the account that owns them."""
    file_refs = [ref for ref in refs if ref.kind == "file_id"]
    if not file_refs:
        return tokens
    owner = stored[file_refs[0].value].owner
    for ref in file_refs:
        if stored[ref.value].owner != owner:
            raise InvalidRequest(
                f"{describe(ref)} was uploaded with another Kimi account than {file_refs[0].value}; one chat can "
                "only use the files of one account.",
                param=ref.param,
                code="file_account_mismatch",
            )
    return tuple(token for token in tokens if owner_of(token, key_owner) == owner)[:1]

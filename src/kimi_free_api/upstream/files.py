"""Attachments on Kimi's side: how a file is uploaded and parsed, and how the Chat request refers to it.

How today's www.kimi.com uploads and attaches files is not documented anywhere (protocol document §10), so this
module holds the plausible variants, chosen by settings. Whatever the variant, the type is decided from the bytes
(an image takes the image path however it arrived), parsing is waited for with exponential backoff (0.25 s,
doubling, at most 2 s between polls) until FILE_PARSE_TIMEOUT_S, and an upload that fails leaves no file that the
Chat request refers to (uploads finish before the Chat request is sent).

Upload flows (`KIMI_UPLOAD_FLOW`):

* `direct` (default). Two independent 2026 clients of www.kimi.com upload this way, and a 2026 inventory of the
  site's RPC methods lists it; it is the best-evidenced flow for the current protocol.
  1. `POST /apiv2-files/file/upload`, multipart/form-data with one field `file` (file name and content type),
     Kimi's usual headers and bearer token -> `{"file": {"id", "meta": {...}, "blob": {...}, "parseResult": {...}}}`.
  2. `POST /apiv2-files/kimi.gateway.file.v1.FileService/GetFileParseProgress` `{"file_ids": [id]}` ->
     `{"progresses": [{"fileId", "status"}]}`, repeated until `PROCESS_STATUS_SUCCESS` (`PROCESS_STATUS_FAIL`: Kimi
     could not read the file; `PROCESS_STATUS_PROCESSING`: not yet).
* `presign`: the flow of Kimi's earlier web client (protocol document §1.7, 1.3 #11-14), on the same origin.
  1. `POST /api/pre-sign-url` `{"action": "image"|"file", "name"}` -> `{"url", "object_name", "file_id"}`.
  2. `PUT <url>` with the raw bytes. The URL points at object storage: the request goes out through a separate
     cookie-less session with only `Content-Type`, never Kimi's Authorization header or identity headers (the
     seed leaked its bearer token to the storage host this way).
  3. `POST /api/file`: an image `{"type": "image", "file_id", "name"}`, anything else
     `{"type": "file", "name", "object_name", "file_id": ""}` -> `{"id", "status", ...}`, repeated until the status
     is `initialized` or `parsed`.
  4. Unless `parsed`: `POST /api/file/parse_process` `{"ids": [id], "timeout": <ms>}`, repeated until the answer
     says `parsed`. Its real answer is unknown; an answer that carries no status for the file counts as done, as
     the seed assumed.

Referring to uploaded files in the Chat request (`KIMI_FILE_REF_STYLE`):

* `block` (default): after the text block, one `message.blocks` entry per file,
  `{"message_id": "", "file": {"id": <Kimi file id>, "status": "PROCESS_STATUS_SUCCESS"}}`, as the 2026 captures
  and clients send it (the file was parsed before the Chat request goes out).
* `refs`: the earlier protocol's `"refs": [<Kimi file id>, ...]` at the top level of the request.

Status strings are matched loosely (`PROCESS_STATUS_SUCCESS`, `parsed`, `success` ...), and ids are read from
`fileId`, `file_id` or `id`, in either casing the JSON codec may produce.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import payload

from kimi_free_api.config import Settings
from kimi_free_api.core.attachments.blobs import Blob
from kimi_free_api.core.attachments.files import AttachmentTimeout, LoadedFile
from kimi_free_api.core.errors import InvalidRequest, NotFound, UpstreamError
from kimi_free_api.upstream.proxies import unreachable, unreachable_reason

DIRECT_UPLOAD = "/apiv2-files/file/upload"
PARSE_PROGRESS = "/apiv2-files/kimi.gateway.file.v1.FileService/GetFileParseProgress"
PRESIGN = "/api/pre-sign-url"
REGISTER = "/api/file"
PARSE_PROCESS = "/api/file/parse_process"

_FIRST_POLL_S = 0.25
_MAX_POLL_S = 2.0
_PARSE_PROCESS_WAIT_S = 10.0  # how long one parse_process call may hold before answering
_READY = "ready"
_FAILED = "failed"
_READY_STATES = frozenset({"process_status_success", "success", "parsed", "initialized", "done", "completed"})
_FAILED_STATES = frozenset({"process_status_fail", "process_status_failed", "fail", "failed", "error", "parse_failed"})

Unary = Callable[[str, str, dict[str, Any]], Awaitable[dict[str, Any]]]
Post = Callable[[str, str, aiohttp.MultipartWriter, str, aiohttp.ClientTimeout], Awaitable[aiohttp.ClientResponse]]
Poll = Callable[[], Awaitable[str | None]]


PARSED_STATUS = "PROCESS_STATUS_SUCCESS"


def refer_to_files(payload_: dict[str, Any], kimi_ids: tuple[str, ...], style: str) -> None:
    """Adds the uploaded files to a Chat request body, in the selected style."""
    if not kimi_ids:
        return
    if style == "refs":
        payload_["refs"] = list(kimi_ids)
    else:
        # Every 2026 capture names the (already parsed) file's status in the block (evidence row 36, P9).
        payload_["message"]["blocks"] += [
            {"message_id": "", "file": {"id": kimi_id, "status": PARSED_STATUS}} for kimi_id in kimi_ids
        ]


class BlobPayload(payload.Payload):
    """An attachment's bytes as a request body, read from the spool as they are sent; the size is known, so the
    request carries a Content-Length (object storage insists on one)."""

    _autoclose = True  # the blob belongs to the caller

    def __init__(self, blob: Blob, content_type: str) -> None:
        super().__init__(blob, content_type=content_type)
        self._blob = blob
        self._size = blob.size

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        raise TypeError("an attachment's bytes are not text")

    async def write(self, writer: Any) -> None:
        async for chunk in self._blob.chunks():
            await writer.write(chunk)


def _text(data: dict[str, Any], *names: str) -> str:
    for name in names:
        value = data.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return ""


def _state(status: object) -> str | None:
    text = str(status).strip().lower()
    if text in _READY_STATES:
        return _READY
    if text in _FAILED_STATES:
        return _FAILED
    return None


def _statuses(data: dict[str, Any], kimi_id: str) -> list[object]:
    """The statuses an answer gives for one file, wherever it lists them (`progresses`, `files` ...)."""
    found: list[object] = []
    for value in data.values():
        for item in value if isinstance(value, list) else ():
            if isinstance(item, dict) and _text(item, "fileId", "file_id", "id") == kimi_id:
                found.append(item.get("status") or item.get("parse_status") or item.get("parseStatus"))
    return found


class KimiFiles:
    def __init__(
        self, unary: Unary, post: Post, storage: Callable[[str], aiohttp.ClientSession], settings: Settings
    ) -> None:
        """`unary` and `post` are the adapter's authenticated calls; `storage(token)` is the cookie-less session
        for that account's presigned uploads."""
        self._unary = unary
        self._post = post
        self._storage = storage
        self._settings = settings
        self._transfer_timeout = aiohttp.ClientTimeout(
            total=settings.attachment_transfer_timeout_s, sock_connect=settings.connect_timeout_s
        )
        # A held parse_process call must answer well within the unary-call timeout.
        self._hold_s = min(_PARSE_PROCESS_WAIT_S, settings.connect_timeout_s / 2)

    async def upload(self, token: str, file: LoadedFile) -> str:
        """Uploads and waits for parsing; answers Kimi's file id."""
        try:
            if self._settings.kimi_upload_flow == "presign":
                return await self._presigned(token, file)
            return await self._direct(token, file)
        except NotFound as exc:
            raise UpstreamError(
                f"Kimi does not know the upload call ({exc.message}); KIMI_UPLOAD_FLOW="
                f"{self._settings.kimi_upload_flow} may not match Kimi's current protocol",
                code="attachment_upload_failed",
            ) from exc

    # KIMI_UPLOAD_FLOW=direct

    async def _direct(self, token: str, file: LoadedFile) -> str:
        form = aiohttp.MultipartWriter("form-data")
        part = form.append_payload(BlobPayload(file.blob, file.type.media_type))
        part.set_content_disposition("form-data", name="file", filename=file.name)
        response = await self._post(token, DIRECT_UPLOAD, form, form.content_type, self._transfer_timeout)
        async with response:
            try:
                data = await response.json(content_type=None)
            except (ValueError, aiohttp.ClientError, TimeoutError) as exc:
                raise UpstreamError("Kimi answered the file upload with an unreadable body") from exc
        if not isinstance(data, dict):
            data = {}
        info = data.get("file")
        kimi_id = _text(info if isinstance(info, dict) else data, "id", "fileId")
        if not kimi_id:
            raise UpstreamError("Kimi answered the file upload without a file id", code="attachment_upload_failed")

        async def progress() -> str | None:
            answer = await self._unary(token, PARSE_PROGRESS, {"file_ids": [kimi_id]})
            return next(filter(None, map(_state, _statuses(answer, kimi_id))), None)

        await self._until(progress, self._deadline())
        return kimi_id

    # KIMI_UPLOAD_FLOW=presign

    async def _presigned(self, token: str, file: LoadedFile) -> str:
        image = file.type.image
        signed = await self._unary(token, PRESIGN, {"action": "image" if image else "file", "name": file.name})
        url = _text(signed, "url")
        if not url.startswith(("https://", "http://")):
            raise UpstreamError("Kimi's pre-sign call answered without an upload URL", code="attachment_upload_failed")
        await self._put(self._storage(token), url, file)
        body: dict[str, Any] = (
            {"type": "image", "file_id": _text(signed, "file_id", "fileId"), "name": file.name}
            if image
            else {"type": "file", "name": file.name, "object_name": _text(signed, "object_name"), "file_id": ""}
        )
        registered: dict[str, Any] = {}

        async def register() -> str | None:
            nonlocal registered
            registered = await self._unary(token, REGISTER, body)
            return _state(registered.get("status"))

        deadline = self._deadline()
        await self._until(register, deadline)
        kimi_id = _text(registered, "id")
        if not kimi_id:
            raise UpstreamError("Kimi registered the file without an id", code="attachment_upload_failed")
        if str(registered.get("status")).lower() != "parsed":

            async def parse_process() -> str | None:
                wait_ms = max(1, int(min(self._hold_s, deadline - self._now()) * 1000))
                answer = await self._unary(token, PARSE_PROCESS, {"ids": [kimi_id], "timeout": wait_ms})
                statuses = _statuses(answer, kimi_id)
                return next(filter(None, map(_state, statuses)), None) if statuses else _READY

            await self._until(parse_process, deadline)
        return kimi_id

    async def _put(self, storage: aiohttp.ClientSession, url: str, file: LoadedFile) -> None:
        media_type = file.type.media_type
        try:
            async with storage.put(
                url,
                data=BlobPayload(file.blob, media_type),
                headers={"Content-Type": media_type},
                timeout=self._transfer_timeout,
                allow_redirects=False,
            ) as response:
                if not 200 <= response.status < 300:
                    raise UpstreamError(
                        f"the object storage refused the upload (HTTP {response.status})",
                        code="attachment_upload_failed",
                    )
        except TimeoutError as exc:
            raise UpstreamError("the upload to object storage timed out", code="attachment_upload_failed") from exc
        except unreachable() as exc:
            raise UpstreamError(
                f"could not upload to object storage ({unreachable_reason(exc, 'the object storage')})",
                code="attachment_upload_failed",
            ) from exc

    # Waiting for Kimi to read the file

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    def _deadline(self) -> float:
        return self._now() + self._settings.file_parse_timeout_s

    async def _until(self, poll: Poll, deadline: float) -> None:
        """Polls until Kimi says the file is ready, backing off between polls; fails on its failure or the deadline."""
        delay = _FIRST_POLL_S
        while True:
            state = await poll()
            if state == _READY:
                return
            if state == _FAILED:
                raise InvalidRequest(
                    "Kimi could not read the file (its parsing failed)", code="attachment_parse_failed"
                )
            remaining = deadline - self._now()
            if remaining <= 0:
                raise AttachmentTimeout(
                    f"Kimi did not finish reading the file within {self._settings.file_parse_timeout_s:g} s "
                    "(FILE_PARSE_TIMEOUT_S)"
                )
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, _MAX_POLL_S)

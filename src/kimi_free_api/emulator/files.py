"""File uploads, in both flows a client of the real site may use (the gateway's `upstream/files.py` gives the
evidence for each):

* direct: `POST /apiv2-files/file/upload` (multipart, field `file`), then `GetFileParseProgress` polling;
* presign: `POST /api/pre-sign-url`, `PUT` to the presigned URL (served here under `/object-storage/`, standing in
  for object storage: it takes no Kimi credentials and refuses requests that carry them), `POST /api/file` to
  register, `POST /api/file/parse_process` to wait for parsing.

The bytes are streamed through sha256 and counted, never kept, so a test can upload tens of MiB and still learn
exactly what arrived. A file counts as parsed `parse_delay_ms` after it arrived, unless a `parse_failed` fault
struck when it was polled. The presign flow's REST calls answer errors in the older `{"error_type", "message"}`
shape, like the rest of `/api/*`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import BodyPartReader, web

from kimi_free_api.emulator import frames
from kimi_free_api.emulator.answers import AttachedFile
from kimi_free_api.emulator.casing import pick
from kimi_free_api.emulator.errors import ConnectError, invalid_argument, json_response
from kimi_free_api.emulator.faults import PARSE_FAILED, Fault
from kimi_free_api.emulator.ids import new_id
from kimi_free_api.emulator.runtime import Runtime, bearer, read_json_object
from kimi_free_api.emulator.state import StoredObject, UploadedFile

PRESIGN = "/api/pre-sign-url"
REGISTER = "/api/file"
PARSE_PROCESS = "/api/file/parse_process"
STORAGE = "/object-storage/{object_name}"
DIRECT_UPLOAD = "/apiv2-files/file/upload"
PARSE_PROGRESS = "/apiv2-files/kimi.gateway.file.v1.FileService/GetFileParseProgress"

PRESIGNED_URL_TTL_S = 900
_READ_BYTES = 256 * 1024
_MAX_PARSE_WAIT_S = 10.0  # parse_process holds at most this long, whatever `timeout` asks
_PROGRESS = {
    "failed": "PROCESS_STATUS_FAIL",
    "parsed": "PROCESS_STATUS_SUCCESS",
    "parsing": "PROCESS_STATUS_PROCESSING",
}


def attached_files(runtime: Runtime, file_ids: Sequence[str], user_id: str) -> tuple[AttachedFile, ...]:
    """The files a Chat request refers to; each must be this account's and parsed."""
    attached = []
    for file_id in file_ids:
        file = runtime.state.files.get(file_id)
        if file is None or file.owner != user_id:
            raise ConnectError("invalid_argument", f"no such file: {file_id}", "file.not_found")
        if not file.parsed:
            raise invalid_argument(f"the file {file_id} is not parsed ({file.to_json()['status']})")
        attached.append(AttachedFile(file.name, file.size, file.sha256))
    return tuple(attached)


async def _digest(read: Callable[[], Awaitable[bytes]]) -> tuple[int, str]:
    """Size and sha256 of a body read piece by piece until an empty read."""
    digest = hashlib.sha256()
    size = 0
    while chunk := await read():
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def _storage_error(status: int, code: str, message: str) -> web.Response:
    """Object storage answers errors in XML, as S3-compatible stores do."""
    body = f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return web.Response(status=status, text=body, content_type="application/xml")


class FileRoutes:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(DIRECT_UPLOAD, self.direct_upload),
            web.post(PARSE_PROGRESS, self.parse_progress),
            web.post(PRESIGN, self.presign),
            web.put(STORAGE, self.storage_put),
            web.post(REGISTER, self.register),
            web.post(PARSE_PROCESS, self.parse_process),
        ]

    def _caller(self, request: web.Request, endpoint: str) -> tuple[str, Fault | None]:
        """The account calling, and the fault rule this call consumes (refusals are raised here)."""
        runtime = self._runtime
        runtime.state.count(endpoint)
        user_id = runtime.user_for_access(bearer(request))
        fault = runtime.faults.take(endpoint, user_id)
        if fault is not None and fault.kind != PARSE_FAILED:
            raise fault.refusal()
        return user_id, fault

    def _keep(self, file: UploadedFile) -> UploadedFile:
        self._runtime.state.files[file.id] = file
        return file

    def _parse_due(self) -> float:
        return time.time() + self._runtime.config.parse_delay_ms / 1000

    async def _upload_delay(self) -> None:
        await asyncio.sleep(self._runtime.config.upload_delay_ms / 1000)

    def _polled(self, user_id: str, file_ids: object, fault: Fault | None) -> list[UploadedFile]:
        """The caller's files among `file_ids`; a `parse_failed` fault makes them fail now."""
        files = self._runtime.state.files
        polled = [
            files[file_id]
            for file_id in (file_ids if isinstance(file_ids, list) else [])
            if isinstance(file_id, str) and file_id in files and files[file_id].owner == user_id
        ]
        if fault is not None:
            for file in polled:
                file.failed = True
        return polled

    # The direct flow (Connect-style errors)

    async def direct_upload(self, request: web.Request) -> web.Response:
        try:
            user_id, _ = self._caller(request, "upload")
            part = await self._file_part(request)
            size, sha256 = await _digest(lambda: part.read_chunk(_READ_BYTES))
        except ConnectError as exc:
            return exc.response()
        await self._upload_delay()
        content_type = part.headers.get("Content-Type", "application/octet-stream")
        kind = "image" if content_type.startswith("image/") else "file"
        name = part.filename or "file"
        file = self._keep(UploadedFile(new_id(), user_id, name, size, sha256, kind, content_type, self._parse_due()))
        signed = f"{request.url.origin()}/apiv2-files/sign-obj/{file.id}?filename={file.name}"
        meta = {
            "name": file.name,
            "contentType": content_type,
            "sizeBytes": str(size),
            "createTime": frames.rfc3339(file.created),
        }
        body = {"file": {"id": file.id, "meta": meta, "blob": {"signUrl": signed}, "parseResult": {}}}
        return json_response(200, self._runtime.cased(body))

    @staticmethod
    async def _file_part(request: web.Request) -> BodyPartReader:
        if not request.content_type.startswith("multipart/"):
            raise invalid_argument("the upload must be multipart/form-data")
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if isinstance(part, BodyPartReader) and part.name == "file":
                return part
            await part.release()
        raise invalid_argument("the form has no `file` field")

    async def parse_progress(self, request: web.Request) -> web.Response:
        try:
            user_id, fault = self._caller(request, "parse")
            polled = self._polled(user_id, pick(await read_json_object(request), "file_ids"), fault)
        except ConnectError as exc:
            return exc.response()
        progresses = [{"fileId": f.id, "status": _PROGRESS[f.to_json()["status"]]} for f in polled]
        return json_response(200, self._runtime.cased({"progresses": progresses}))

    # The presign flow (REST errors)

    async def presign(self, request: web.Request) -> web.Response:
        try:
            user_id, _ = self._caller(request, "presign")
            body = await read_json_object(request)
            action, name = body.get("action"), body.get("name")
            if action not in ("image", "file") or not isinstance(name, str) or not name:
                raise invalid_argument("`action` must be image or file, and `name` a file name")
        except ConnectError as exc:
            return exc.legacy_response()
        stored = StoredObject(f"{user_id}-{new_id()}", user_id, new_id(), name)
        self._runtime.state.objects[stored.name] = stored
        expires = str(int(time.time()) + PRESIGNED_URL_TTL_S)
        url = request.url.origin().with_path(STORAGE.format(object_name=stored.name))
        url = url.with_query(expires=expires, signature=self._signature(stored.name, expires))
        return json_response(200, {"url": str(url), "object_name": stored.name, "file_id": stored.file_id})

    def _signature(self, object_name: str, expires: str) -> str:
        return hmac.new(self._runtime.storage_key, f"{object_name}\n{expires}".encode(), "sha256").hexdigest()

    async def storage_put(self, request: web.Request) -> web.Response:
        state = self._runtime.state
        state.count("upload")
        if "Authorization" in request.headers or "Cookie" in request.headers:
            state.storage_rejections += 1
            return _storage_error(400, "InvalidArgument", "Only one auth mechanism allowed: the URL is signed")
        stored = state.objects.get(request.match_info["object_name"])
        expires = request.query.get("expires", "")
        signature = self._signature(stored.name, expires) if stored is not None else ""
        if stored is None or not hmac.compare_digest(signature, request.query.get("signature", "")):
            return _storage_error(403, "SignatureDoesNotMatch", "the URL is not signed for this object")
        if not expires.isdigit() or int(expires) < time.time():
            return _storage_error(403, "AccessDenied", "the signed URL has expired")
        if request.content_length is None:
            return _storage_error(411, "MissingContentLength", "a Content-Length is required")
        fault = self._runtime.faults.take("upload", stored.owner)
        if fault is not None:
            return _storage_error(fault.refusal().status, "InternalError", fault.message or "the upload failed")
        size, sha256 = await _digest(lambda: request.content.read(_READ_BYTES))
        if size != request.content_length:
            return _storage_error(400, "IncompleteBody", "fewer bytes arrived than Content-Length announced")
        await self._upload_delay()
        stored.size, stored.sha256, stored.uploaded = size, sha256, True
        return web.Response(status=200, headers={"ETag": f'"{sha256[:32]}"'})

    async def register(self, request: web.Request) -> web.Response:
        try:
            user_id, _ = self._caller(request, "register")
            file = self._registered(user_id, await read_json_object(request))
        except ConnectError as exc:
            return exc.legacy_response()
        status = file.to_json()["status"]
        return json_response(
            200,
            {
                "id": file.id,
                "name": file.name,
                "type": file.kind,
                "size": file.size,
                "status": "initialized" if status == "parsing" else status,
                "created_at": frames.rfc3339(file.created),
            },
        )

    def _registered(self, user_id: str, body: dict[str, Any]) -> UploadedFile:
        """The file for an uploaded object, created on the first registration (later ones answer the same)."""
        kind = body.get("type")
        objects = self._runtime.state.objects.values()
        if kind == "image":
            found = [o for o in objects if o.file_id == body.get("file_id")]
        elif kind == "file":
            found = [o for o in objects if o.name == body.get("object_name")]
        else:
            raise invalid_argument("`type` must be image or file")
        stored = found[0] if found else None
        if stored is None or stored.owner != user_id or not stored.uploaded:
            raise invalid_argument("no uploaded object matches this registration")
        file = self._runtime.state.files.get(stored.file_id)
        if file is None:
            media = "image/*" if kind == "image" else "application/octet-stream"
            file = self._keep(
                UploadedFile(
                    stored.file_id, user_id, stored.filename, stored.size, stored.sha256, kind, media, self._parse_due()
                )
            )
        return file

    async def parse_process(self, request: web.Request) -> web.Response:
        try:
            user_id, fault = self._caller(request, "parse")
            body = await read_json_object(request)
            polled = self._polled(user_id, body.get("ids"), fault)
        except ConnectError as exc:
            return exc.legacy_response()
        timeout = body.get("timeout")
        wait_s = min(timeout / 1000 if isinstance(timeout, int | float) else 0.0, _MAX_PARSE_WAIT_S)
        pending = [f.parse_due for f in polled if not f.failed and not f.parsed]
        if pending:
            await asyncio.sleep(max(0.0, min(max(pending) - time.time(), wait_s)))
        return json_response(200, {"files": [{"id": f.id, "status": f.to_json()["status"]} for f in polled]})

"""The OpenAI Files API, for attachments: `POST /v1/files` uploads to Kimi right away with the caller's Kimi
account (the first bearer token); `GET /v1/files`, `GET /v1/files/{id}` and `DELETE /v1/files/{id}` see only files
that one of the caller's tokens uploaded. A chat refers to a file with `{"type": "file", "file": {"file_id": …}}`.

The upload is streamed to a spool (never read whole into memory) and capped at MAX_ATTACHMENT_BYTES. Kimi keeps
the parsed file; the gateway keeps only its metadata, so `GET /v1/files/{id}/content` answers the owner with a
400 that says so, and anyone else with the 404 of a file that does not exist.
"""

from __future__ import annotations

import orjson
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from kimi_free_api.api.auth import caller
from kimi_free_api.api.body import body_deadline
from kimi_free_api.api.context import FILES, POOL
from kimi_free_api.core.attachments.blobs import AttachmentRejected, Blob, BlobWriter
from kimi_free_api.core.attachments.files import StoredFile
from kimi_free_api.core.errors import InvalidRequest, NotFound, UpstreamUnavailable

PURPOSES = frozenset({"assistants", "batch", "fine-tune", "vision", "user_data", "evals"})
_FIELD_MAX_BYTES = 1024  # for the form's text fields
_READ_BYTES = 256 * 1024


def file_object(file: StoredFile) -> dict[str, object]:
    return {
        "id": file.id,
        "object": "file",
        "bytes": file.bytes,
        "created_at": file.created_at,
        "filename": file.filename,
        "purpose": file.purpose,
        "status": "processed",
        "expires_at": None,
        "status_details": None,
    }


def _json(body: object) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def _caller(request: web.Request) -> tuple[tuple[str, ...], str]:
    """The Kimi accounts a file may belong to (the client's own tokens, or after an API key the server's), and the
    API key's owner id: the server's accounts hold the files of every key, each key sees only its own."""
    tokens, owner = await caller(request)
    tokens = tokens or request.app[POOL].server_tokens()
    if not tokens:
        raise UpstreamUnavailable("No Kimi account is configured on this server for files.")
    return tokens, owner


async def _field(part: BodyPartReader) -> str:
    data = b""
    while chunk := await part.read_chunk(_FIELD_MAX_BYTES):
        data += chunk
        if len(data) > _FIELD_MAX_BYTES:
            raise InvalidRequest(f"The form field `{part.name}` is too long.", param=part.name, code="invalid_value")
    return data.decode("utf-8", errors="replace").strip()


async def _spool(part: BodyPartReader, limit: int) -> Blob:
    writer = BlobWriter(limit)
    try:
        while chunk := await part.read_chunk(_READ_BYTES):
            await writer.write(chunk)
        return await writer.finish()
    except BaseException:
        writer.discard()
        raise


async def upload_file(request: web.Request) -> web.Response:
    tokens, owner = await _caller(request)
    if not request.content_type.startswith("multipart/form-data"):
        raise InvalidRequest(
            "POST /v1/files takes multipart/form-data with a `file` and a `purpose` field.",
            code="invalid_content_type",
        )
    service = request.app[FILES]
    purpose = "user_data"
    filename = ""
    blob: Blob | None = None
    try:
        try:
            async with body_deadline(request):
                reader = await request.multipart()
                while (part := await reader.next()) is not None:
                    if isinstance(part, BodyPartReader) and part.name == "purpose":
                        purpose = await _field(part)
                    elif isinstance(part, BodyPartReader) and part.name == "file" and blob is None:
                        filename = part.filename or ""
                        blob = await _spool(part, service.max_bytes)
                    else:
                        await part.release()
        except (ValueError, UnicodeError, AssertionError, HttpProcessingError) as exc:
            # aiohttp's multipart reader reports a broken body (no boundary, a part past the end, a bad header)
            # with these; its messages quote the body, so only the kind of fault is named.
            raise InvalidRequest(
                "The multipart/form-data body is malformed (boundary, part headers or framing).",
                code="invalid_multipart",
            ) from exc
        if blob is None:
            raise InvalidRequest("The form has no `file` field.", param="file", code="missing_required_parameter")
        if purpose not in PURPOSES:
            raise InvalidRequest(
                f"`purpose` must be one of {', '.join(sorted(PURPOSES))}.", param="purpose", code="invalid_value"
            )
        stored = await service.upload(tokens[0], owner, blob, filename, purpose)
    except AttachmentRejected as exc:
        raise InvalidRequest(f"The uploaded file cannot be used: {exc.reason}.", param="file", code=exc.code) from exc
    finally:
        if blob is not None:
            blob.close()
    return _json(file_object(stored))


async def _owned(request: web.Request) -> StoredFile:
    """The caller's file; another client's is a 404 exactly like a file that does not exist."""
    file_id = request.match_info["file_id"]
    file = await request.app[FILES].find(*await _caller(request), file_id)
    if file is None:
        raise NotFound(f"No such file: {file_id}.", param="file_id", code="file_not_found")
    return file


async def retrieve_file(request: web.Request) -> web.Response:
    return _json(file_object(await _owned(request)))


async def file_content(request: web.Request) -> web.Response:
    file = await _owned(request)
    raise InvalidRequest(
        f"The content of {file.id} is not available: the gateway hands files to Kimi and keeps only their metadata.",
        param="file_id",
        code="file_content_unavailable",
    )


async def delete_file(request: web.Request) -> web.Response:
    file = await _owned(request)
    await request.app[FILES].delete(*await _caller(request), file.id)
    return _json({"id": file.id, "object": "file", "deleted": True})


async def list_files(request: web.Request) -> web.Response:
    files = await request.app[FILES].list(*await _caller(request))
    query = request.query
    purpose = query.get("purpose")
    if purpose:
        files = [file for file in files if file.purpose == purpose]
    files.sort(key=lambda file: (file.created_at, file.id), reverse=query.get("order", "desc") != "asc")
    after = query.get("after")
    if after:
        ids = [file.id for file in files]
        files = files[ids.index(after) + 1 :] if after in ids else []
    try:
        limit = max(1, min(10_000, int(query.get("limit", "10000"))))
    except ValueError as exc:
        raise InvalidRequest("`limit` must be an integer.", param="limit", code="invalid_type") from exc
    page = files[:limit]
    body = {
        "object": "list",
        "data": [file_object(file) for file in page],
        "first_id": page[0].id if page else None,
        "last_id": page[-1].id if page else None,
        "has_more": len(files) > limit,
    }
    return _json(body)

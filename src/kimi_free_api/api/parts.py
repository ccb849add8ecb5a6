"""Attachment content parts of user messages, in every shape clients send them.

* `{"type": "image_url", "image_url": {"url": …}}` (OpenAI; `image_url` as a bare string is accepted too);
* `{"type": "file", "file_url": {"url": …}}` (the seed's own shape);
* `{"type": "file", "file": {"file_data": "data:…;base64,…" or bare base64, "filename"?: …}}` (OpenAI);
* `{"type": "file", "file": {"file_id": "file-…"}}` (an id from POST /v1/files).

Every URL may be http(s) or `data:`. Only the shape is checked here; fetching, decoding and typing happen in the
core, before anything is sent to Kimi.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from kimi_free_api.core.errors import InvalidRequest
from kimi_free_api.core.request import AttachmentRef

ATTACHMENT_PARTS = frozenset({"image_url", "file"})


def _url(value: Any) -> str | None:
    url = value.get("url") if isinstance(value, dict) else value
    return url.strip() if isinstance(url, str) and url.strip() else None


def _checked_url(url: str, at: str) -> str:
    if url[:5].lower() == "data:":
        return url
    try:
        parts = urlsplit(url)
        valid = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid:
        raise InvalidRequest(
            f"`{at}` must hold an http(s) URL with a host or a data: URL.", param=at, code="invalid_attachment_url"
        )
    return url


def attachment_ref(part: dict[str, Any], at: str, offset: int) -> AttachmentRef:
    """The attachment an `image_url` or `file` part refers to; `offset` is where it sits in the message text."""
    kind = part.get("type")
    file = part.get("file")
    url = _url(part.get("image_url")) if kind == "image_url" else _url(part.get("file_url"))
    if url is not None:
        return AttachmentRef("url", _checked_url(url, at), None, at, offset)
    if kind == "file" and isinstance(file, dict):
        filename = file.get("filename") if isinstance(file.get("filename"), str) else None
        file_id, data = file.get("file_id"), file.get("file_data")
        if isinstance(file_id, str) and file_id.strip():
            return AttachmentRef("file_id", file_id.strip(), filename, at, offset)
        if isinstance(data, str) and data.strip():
            if data[:5].lower() == "data:":
                return AttachmentRef("url", data, filename, at, offset)
            return AttachmentRef("base64", data, filename, at, offset)
    shape = "`image_url.url`" if kind == "image_url" else "`file.file_id`, `file.file_data` or `file_url.url`"
    raise InvalidRequest(f"`{at}` must carry {shape}.", param=at, code="invalid_attachment")

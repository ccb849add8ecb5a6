"""Reading JSON request bodies whatever the Content-Type says (the seed's users often sent none, issue #75).

A body is refused before it is read when its declared length is over the limit, and after credentials are
checked (`authenticated_json`), so an unauthenticated sender cannot make the gateway hold 100 MB. Reading has a
deadline, so a client that trickles its body does not keep a connection for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import web

from kimi_free_api.api.auth import credentials
from kimi_free_api.api.errors import BodyTimeout, PayloadTooLarge
from kimi_free_api.core.errors import InvalidRequest

BODY_TIMEOUT_S = web.AppKey("body_timeout_s", float)
# For endpoints whose body is a few fields (/token/check).
SMALL_BODY_BYTES = 64 * 1024


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is larger than the {limit} bytes accepted (MAX_REQUEST_BYTES).")


async def _read(request: web.Request, limit: int) -> bytes:
    declared = request.content_length
    if declared is not None and declared > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.readany():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


@contextlib.asynccontextmanager
async def body_deadline(request: web.Request) -> AsyncIterator[None]:
    """Reading the body inside this must end within REQUEST_BODY_TIMEOUT_S, else 408."""
    timeout_s = request.app.get(BODY_TIMEOUT_S)
    try:
        async with asyncio.timeout(timeout_s):
            yield
    except TimeoutError as exc:
        raise BodyTimeout(f"The request body did not arrive within {timeout_s:g} s.") from exc


async def json_body(request: web.Request, max_bytes: int | None = None) -> Any:
    limit = min(max_bytes or request.client_max_size, request.client_max_size)
    async with body_deadline(request):
        raw = await _read(request, limit)
    if not raw.strip():
        raise InvalidRequest("The request body is empty; send a JSON object.", code="invalid_json")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}", code="invalid_json") from exc


async def authenticated_json(request: web.Request) -> tuple[tuple[str, ...], Any]:
    """The caller's credentials (see `credentials`), then the body: a refused caller's body is never read."""
    tokens = await credentials(request)
    return tokens, await json_body(request)

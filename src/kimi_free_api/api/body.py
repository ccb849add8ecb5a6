"""Reading JSON request bodies whatever the Content-Type says (the seed's users often sent none, issue #75)."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from kimi_free_api.core.errors import InvalidRequest


async def json_body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        raise InvalidRequest("The request body is empty; send a JSON object.", code="invalid_json")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}", code="invalid_json") from exc

"""GET /v1/models and GET /v1/models/{id} in Anthropic's shape, for clients that send `anthropic-version` (the
OpenAI shape stays the answer for everyone else: the two APIs share these paths).

The list pages as Anthropic's does (`limit`, default 20, at most 1000; `after_id`, `before_id`; `first_id`,
`last_id`, `has_more`).
"""

from __future__ import annotations

import orjson
from aiohttp import web

from kimi_free_api.api.anthropic.errors import anthropic_errors
from kimi_free_api.api.auth import bearer_tokens, credentials
from kimi_free_api.api.context import POOL, service_of
from kimi_free_api.api.errors import Handler
from kimi_free_api.api.fields import fail
from kimi_free_api.core.models.modelspec import listed_model_ids
from kimi_free_api.core.request import ChatRequest

# Any stable date satisfies the schema; this is the day the Kimi web chat launched its current protocol era.
_CREATED_AT = "2025-01-01T00:00:00Z"
_MAX_LIMIT = 1000


def for_anthropic_clients(anthropic: Handler, openai: Handler) -> Handler:
    """`anthropic` for requests that carry `anthropic-version`, `openai` for the others."""

    async def choose(request: web.Request) -> web.StreamResponse:
        return await (anthropic if "anthropic-version" in request.headers else openai)(request)

    return choose


def _model(model_id: str) -> dict[str, object]:
    return {"type": "model", "id": model_id, "display_name": model_id, "created_at": _CREATED_AT}


def catalog_token(request: web.Request, tokens: tuple[str, ...]) -> str | None:
    """A Kimi token to read the upstream catalog with (one of the client's, or a server account's)."""
    return request.app[POOL].any_token(tokens)


async def _token(request: web.Request) -> str | None:
    # Anonymous callers just get the built-in ids.
    return catalog_token(request, await credentials(request)) if bearer_tokens(request) else None


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", "20")
    if not raw.isdigit() or not 1 <= int(raw) <= _MAX_LIMIT:
        raise fail(f"`limit` must be an integer from 1 to {_MAX_LIMIT}.", "limit")
    return int(raw)


@anthropic_errors
async def list_models(request: web.Request) -> web.Response:
    ids = listed_model_ids(await service_of(request).catalog.get(await _token(request)))
    limit = _limit(request)
    after, before = request.query.get("after_id"), request.query.get("before_id")
    start, end = 0, len(ids)
    if after in ids:
        start = ids.index(after) + 1
    if before in ids:
        end = ids.index(before)
        start = max(start, end - limit) if after is None else start
    page = ids[start:end][:limit]
    body = {
        "data": [_model(model_id) for model_id in page],
        "first_id": page[0] if page else None,
        "last_id": page[-1] if page else None,
        "has_more": start + len(page) < end,
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


@anthropic_errors
async def get_model(request: web.Request) -> web.Response:
    model_id = request.match_info["model"]
    probe = ChatRequest(model=model_id, messages=(), tokens=())
    await service_of(request).resolve_model(probe, await _token(request))
    return web.Response(body=orjson.dumps(_model(model_id)), content_type="application/json")

"""GET /v1/models and GET /v1/models/{id}: the ids that work, including the upstream's published catalog."""

from __future__ import annotations

import orjson
from aiohttp import web

from kimi_free_api.api.auth import bearer_tokens, credentials
from kimi_free_api.api.context import POOL, service_of
from kimi_free_api.core.models.modelspec import CatalogModel, listed_model_ids
from kimi_free_api.core.request import ChatRequest

# Any stable value satisfies the schema; this is the day the Kimi web chat launched its current protocol era.
_CREATED = 1735689600


def _model(model_id: str) -> dict[str, object]:
    return {"id": model_id, "object": "model", "created": _CREATED, "owned_by": "kimi-free-api"}


async def _token(request: web.Request) -> str | None:
    """A Kimi token to read the catalog with; anonymous callers just get the built-in ids."""
    if not bearer_tokens(request):
        return None
    return request.app[POOL].any_token(await credentials(request))


async def _catalog(request: web.Request) -> dict[str, CatalogModel]:
    return await service_of(request).catalog.get(await _token(request))


async def list_models(request: web.Request) -> web.Response:
    ids = listed_model_ids(await _catalog(request))
    body = {"object": "list", "data": [_model(model_id) for model_id in ids]}
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def get_model(request: web.Request) -> web.Response:
    model_id = request.match_info["model"]
    probe = ChatRequest(model=model_id, messages=(), tokens=())
    await service_of(request).resolve_model(probe, await _token(request))
    return web.Response(body=orjson.dumps(_model(model_id)), content_type="application/json")

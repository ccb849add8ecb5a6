"""GET /v1/models and GET /v1/models/{id}: the ids that work, including the upstream's published catalog."""

from __future__ import annotations

import orjson
from aiohttp import web

from kimi_free_api.api.auth import bearer_tokens
from kimi_free_api.api.context import service_of
from kimi_free_api.core.modelspec import CatalogModel, listed_model_ids
from kimi_free_api.core.request import ChatRequest

# Any stable value satisfies the schema; this is the day the Kimi web chat launched its current protocol era.
_CREATED = 1735689600


def _model(model_id: str) -> dict[str, object]:
    return {"id": model_id, "object": "model", "created": _CREATED, "owned_by": "kimi-free-api"}


async def _catalog(request: web.Request) -> dict[str, CatalogModel]:
    tokens = bearer_tokens(request)
    return await service_of(request).catalog.get(tokens[0] if tokens else None)


async def list_models(request: web.Request) -> web.Response:
    ids = listed_model_ids(await _catalog(request))
    body = {"object": "list", "data": [_model(model_id) for model_id in ids]}
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def get_model(request: web.Request) -> web.Response:
    model_id = request.match_info["model"]
    service = service_of(request)
    tokens = bearer_tokens(request)
    probe = ChatRequest(model=model_id, messages=(), tokens=tokens)
    await service.resolve_model(probe, tokens[0] if tokens else None)
    return web.Response(body=orjson.dumps(_model(model_id)), content_type="application/json")

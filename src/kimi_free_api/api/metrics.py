"""GET /metrics: the gateway's metrics in Prometheus' text format, behind METRICS_KEY when one is set."""

from __future__ import annotations

import hmac

from aiohttp import web

from kimi_free_api.api.auth import bearer_tokens
from kimi_free_api.api.context import METRICS
from kimi_free_api.core.errors import NotFound, Unauthorized


async def scrape(request: web.Request) -> web.Response:
    metrics = request.app[METRICS]
    if metrics.key:
        given = bearer_tokens(request)
        if len(given) != 1 or not hmac.compare_digest(given[0].encode(), metrics.key.encode()):
            raise Unauthorized(
                "/metrics needs METRICS_KEY in the `Authorization: Bearer` header.", code="invalid_metrics_key"
            )
    scraped = metrics.exposition()
    if scraped is None:
        raise NotFound("Metrics are off: METRICS_ENABLED=false.", code="metrics_disabled")
    body, content_type = scraped
    return web.Response(body=body, headers={"Content-Type": content_type})

"""The composition root: builds the aiohttp application and wires the adapter into the core."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from kimi_free_api.api.context import SERVICE, UPSTREAM
from kimi_free_api.api.routes import add_routes
from kimi_free_api.config import Settings
from kimi_free_api.core.background import BackgroundTasks
from kimi_free_api.core.catalog import ModelCatalog
from kimi_free_api.core.service import ChatService
from kimi_free_api.upstream.web import KimiWebAdapter

log = logging.getLogger(__name__)
SETTINGS = web.AppKey("settings", Settings)
CLEANUP_GRACE_S = 10.0


def create_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=settings.max_request_bytes)
    app[SETTINGS] = settings
    add_routes(app)
    app.cleanup_ctx.append(_upstream_context)
    return app


async def _upstream_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    # limit=0: the default pool of 100 would queue the 101st concurrent stream.
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
    session = aiohttp.ClientSession(
        connector=connector,
        trust_env=False,
        proxy=settings.kimi_proxy or None,
        auto_decompress=True,
    )
    adapter = KimiWebAdapter(session, settings)
    background = BackgroundTasks()
    app[UPSTREAM] = adapter
    app[SERVICE] = ChatService(
        adapter,
        ModelCatalog(adapter, settings.models_cache_ttl_s),
        background,
        auto_delete=settings.auto_delete,
    )
    log.info("relaying to %s", settings.kimi_base_url)
    try:
        yield
    finally:
        await background.drain(CLEANUP_GRACE_S)
        await session.close()

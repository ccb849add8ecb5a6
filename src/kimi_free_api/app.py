"""The composition root: builds the aiohttp application and wires adapters, pool and stores into the core."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from kimi_free_api.api.context import ACCESS, POOL, SERVICE, UPSTREAM, Access
from kimi_free_api.api.routes import add_routes
from kimi_free_api.config import Settings
from kimi_free_api.core.background import BackgroundTasks
from kimi_free_api.core.catalog import ModelCatalog
from kimi_free_api.core.service import ChatService, FailoverPolicy
from kimi_free_api.pool.accounts import CooldownPolicy
from kimi_free_api.pool.prober import probe_forever
from kimi_free_api.pool.scheduler import PoolSettings, Scheduler
from kimi_free_api.state.keys import KeyRing
from kimi_free_api.state.sqlite import SqliteStore
from kimi_free_api.upstream.web import KimiWebAdapter

log = logging.getLogger(__name__)
SETTINGS = web.AppKey("settings", Settings)
CLEANUP_GRACE_S = 10.0


def create_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=settings.max_request_bytes)
    app[SETTINGS] = settings
    add_routes(app)
    app.cleanup_ctx.append(_runtime)
    return app


def build_pool(settings: Settings, store: SqliteStore) -> Scheduler:
    pool = Scheduler(
        PoolSettings(
            cap=settings.max_in_flight_per_account,
            min_interval_s=settings.min_start_interval_s,
            keepalive_s=settings.keepalive_s,
            policy=CooldownPolicy(rate_limited_s=settings.cooldown_rate_limited_s, quota_s=settings.cooldown_quota_s),
        )
    )
    for token in settings.server_tokens():
        pool.add_server_account(token)
    for stored in store.list_accounts():
        pool.add_server_account(stored.token)
    return pool


async def _runtime(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = SqliteStore.in_dir(settings.data_dir)
    pool = build_pool(settings, store)
    client_tokens = settings.allow_client_tokens == "true" or (
        settings.allow_client_tokens == "auto" and not pool.has_server_accounts
    )
    # limit=0: the default pool of 100 would queue the 101st concurrent stream.
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
    session = aiohttp.ClientSession(
        connector=connector, trust_env=False, proxy=settings.kimi_proxy or None, auto_decompress=True
    )
    adapter = KimiWebAdapter(session, settings)
    background = BackgroundTasks()
    app[UPSTREAM] = adapter
    app[POOL] = pool
    app[ACCESS] = Access(KeyRing(settings.api_key_list, store), client_tokens, settings.admin_key)
    app[SERVICE] = ChatService(
        adapter,
        ModelCatalog(adapter, settings.models_cache_ttl_s),
        background,
        pool,
        auto_delete=settings.auto_delete,
        failover=FailoverPolicy(attempts=settings.failover_attempts, capacity_wait_s=settings.capacity_wait_s),
        keepalive_s=settings.keepalive_s,
    )
    prober = asyncio.create_task(
        probe_forever(pool, adapter.check_token, adapter.keep_fresh, settings.probe_interval_s), name="prober"
    )
    log.info(
        "relaying to %s with %d server account(s); client tokens %s",
        settings.kimi_base_url,
        len([a for a in pool.accounts() if a.kind == "server"]),
        "accepted" if client_tokens else "refused",
    )
    try:
        yield
    finally:
        prober.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await prober
        await background.drain(CLEANUP_GRACE_S)
        await adapter.watchdog.stop()
        await session.close()
        store.close()

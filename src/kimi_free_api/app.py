"""The composition root: builds the aiohttp application and wires adapters, pool and stores into the core."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from aiohttp import web

from kimi_free_api.api.admin.ports import ADMIN, AdminContext
from kimi_free_api.api.body import BODY_TIMEOUT_S
from kimi_free_api.api.context import ACCESS, FILES, METRICS, POOL, RESPONSES, SERVICE, TOKENS, UPSTREAM, Access
from kimi_free_api.api.keepalive import WHOLE_ANSWER_KEEPALIVE_S
from kimi_free_api.api.metering import ACCOUNTS, LIMITER, REQUEST_LOG
from kimi_free_api.api.routes import add_routes
from kimi_free_api.api.server import GatewayRunner, connection_limits, connection_middleware
from kimi_free_api.config import Settings
from kimi_free_api.core.access.callers import KeyLimiter
from kimi_free_api.core.access.requestlog import LogWriter, RequestLogStore, Retention
from kimi_free_api.core.answer.background import BackgroundTasks
from kimi_free_api.core.answer.service import ChatService, FailoverPolicy
from kimi_free_api.core.attachments.attachments import AttachmentLimits, Attachments
from kimi_free_api.core.attachments.files import FileRegistry, FileService
from kimi_free_api.core.conversation.janitor import Janitor
from kimi_free_api.core.conversation.response_store import ResponseStore
from kimi_free_api.core.models.aliases import ModelAliases
from kimi_free_api.core.models.catalog import ModelCatalog
from kimi_free_api.core.ports import AnswerObserver
from kimi_free_api.core.usage.tokenizer import BpeCounter, EstimateCounter
from kimi_free_api.core.usage.usage import TokenCounter
from kimi_free_api.fetch.fetcher import FetchLimits, SafeFetcher
from kimi_free_api.fetch.loader import SourceLoader
from kimi_free_api.fetch.resolver import policy_vet
from kimi_free_api.metrics.off import NoMetrics
from kimi_free_api.pool.accounts import Account, CooldownPolicy, account_id
from kimi_free_api.pool.membership import follow_store
from kimi_free_api.pool.prober import probe_forever
from kimi_free_api.pool.scheduler import PoolSettings, Scheduler, SharedAccounts
from kimi_free_api.state.conversations import SqliteConversations
from kimi_free_api.state.files import SqliteFileRegistry
from kimi_free_api.state.keys import KeyRing
from kimi_free_api.state.limits import LocalKeyLimiter
from kimi_free_api.state.requestlog import SqliteRequestLog
from kimi_free_api.state.responses import SqliteResponseStore
from kimi_free_api.state.sqlite import AccountHealth, SqliteStore
from kimi_free_api.upstream.proxies import ProxyRoutes
from kimi_free_api.upstream.web import KimiWebAdapter

if TYPE_CHECKING:
    from kimi_free_api.state.redis import RedisState

log = logging.getLogger(__name__)
SETTINGS = web.AppKey("settings", Settings)
_SCHEDULER = web.AppKey("scheduler", Scheduler)
_OBSERVER = web.AppKey("observer", AnswerObserver)
CLEANUP_GRACE_S = 10.0


def create_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=settings.max_request_bytes)
    app[SETTINGS] = settings
    app[BODY_TIMEOUT_S] = settings.request_body_timeout_s
    app[WHOLE_ANSWER_KEEPALIVE_S] = settings.whole_answer_keepalive_s
    app.middlewares.append(connection_middleware)
    _add_metrics(app, settings)
    add_routes(app)
    app.cleanup_ctx.append(_runtime)
    return app


def make_runner(settings: Settings, app: web.Application | None = None, **options: Any) -> GatewayRunner:
    """The gateway's application (or `app`, made by `create_app`) on its bounded server (api/server.py); `options`
    are aiohttp runner options."""
    app = create_app(settings) if app is None else app
    return GatewayRunner(app, connection_limits(settings), handler_cancellation=True, **options)


def _add_metrics(app: web.Application, settings: Settings) -> None:
    """Before the routes' own middleware, so the request counts see the statuses it chooses. The pool is read at
    scrape time, through the app: it exists only once the app runs."""
    if not settings.metrics_enabled:
        app[METRICS] = app[_OBSERVER] = NoMetrics()
        return
    from kimi_free_api.metrics.gateway import GatewayMetrics

    metrics = GatewayMetrics(lambda: app[_SCHEDULER].accounts() if _SCHEDULER in app else [], settings.metrics_key)
    app[METRICS] = app[_OBSERVER] = metrics
    app.middlewares.append(metrics.middleware)
    app.on_response_prepare.append(metrics.on_prepare)


def build_pool(settings: Settings, store: SqliteStore, shared: SharedAccounts | None) -> Scheduler:
    def remember(account: Account, now: float) -> None:
        health = AccountHealth(
            account.id, account.dead, account.cooldown_wall(now), account.last_error, account.last_error_at
        )
        store.save_health(health)

    pool = Scheduler(
        PoolSettings(
            cap=settings.max_in_flight_per_account,
            min_interval_s=settings.min_start_interval_s,
            keepalive_s=settings.keepalive_s,
            policy=CooldownPolicy(rate_limited_s=settings.cooldown_rate_limited_s, quota_s=settings.cooldown_quota_s),
            max_client_accounts=settings.max_client_accounts,
        ),
        shared,
        remember,
    )
    accounts = [pool.add_server_account(token) for token in settings.server_tokens()]
    accounts += follow_store(pool, store.list_accounts(), frozenset(a.id for a in accounts))
    known = store.load_health()
    for account in accounts:
        if account.id in known:
            account.restore(known[account.id])
    return pool


async def _token_counter(settings: Settings) -> TokenCounter:
    if settings.usage_tokenizer == "estimate":
        return EstimateCounter()
    counter = BpeCounter()
    await asyncio.to_thread(counter.load)  # a fraction of a second, once per process; not on the event loop
    return counter


def _redis_state(url: str) -> RedisState:
    # Imported only when configured: the Redis client costs a single-instance gateway about 4 MB of memory.
    from kimi_free_api.state.redis import RedisState

    return RedisState.from_url(url)


def _file_registry(store: SqliteStore, shared: RedisState | None) -> FileRegistry:
    if shared is None:
        return SqliteFileRegistry(store)
    from kimi_free_api.state.redis import RedisFileRegistry

    return RedisFileRegistry(shared)


def _response_store(store: SqliteStore, shared: RedisState | None) -> ResponseStore:
    if shared is None:
        return SqliteResponseStore(store)
    from kimi_free_api.state.redis import RedisResponseStore

    return RedisResponseStore(shared)


async def _follow_store_forever(
    pool: Scheduler, store: SqliteStore, configured: frozenset[str], every_s: float
) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            stored = await asyncio.to_thread(store.list_accounts)
        except sqlite3.Error as exc:  # a busy or briefly unreadable file: the next round reads it again
            log.warning("could not read the stored accounts: %s", exc)
            continue
        follow_store(pool, stored, configured)


def _key_limiter(shared: RedisState | None) -> KeyLimiter:
    if shared is None:
        return LocalKeyLimiter()
    from kimi_free_api.state.redis_access import RedisKeyLimiter

    return RedisKeyLimiter(shared)


def _request_log(store: SqliteStore, shared: RedisState | None) -> RequestLogStore:
    if shared is None:
        return SqliteRequestLog(store)
    from kimi_free_api.state.redis_access import RedisRequestLog

    return RedisRequestLog(shared)


def _access(
    app: web.Application,
    settings: Settings,
    *,
    store: SqliteStore,
    shared: RedisState | None,
    pool: Scheduler,
    adapter: KimiWebAdapter,
) -> list[asyncio.Task[None]]:
    """API keys and their limits, the request log, the admin console, and the pool following the store's accounts;
    answers the background tasks that keep them current."""
    keys = KeyRing(settings.api_key_list, store)
    client_tokens = settings.allow_client_tokens == "true" or (
        settings.allow_client_tokens == "auto" and not pool.has_server_accounts
    )
    app[ACCESS] = Access(keys, client_tokens, settings.admin_key)
    app[LIMITER] = _key_limiter(shared)
    app[ACCOUNTS] = pool
    app[ADMIN] = AdminContext(
        settings.admin_key,
        records=store,
        pool=pool,
        keys=keys,
        plans=adapter,
        ended=shared or store,
        configured_keys=keys.configured_ids,
        session_ttl_s=settings.admin_session_ttl_s,
    )
    configured = frozenset(account_id(token) for token in settings.server_tokens())
    follower = asyncio.create_task(
        _follow_store_forever(pool, store, configured, settings.account_sync_interval_s), name="account-sync"
    )
    if not settings.request_log_max_entries:
        return [follower]
    writer = LogWriter(
        _request_log(store, shared),
        Retention(settings.request_log_max_entries, settings.request_log_max_age_s),
        keep_prompts=settings.request_log_prompts,
    )
    app[REQUEST_LOG] = writer
    return [follower, asyncio.create_task(writer.run(), name="request-log")]


async def _runtime(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = SqliteStore.in_dir(settings.data_dir)
    # With Redis, several instances share the pool's limits and the conversations; otherwise the SQLite file.
    shared = _redis_state(settings.redis_url) if settings.redis_url else None
    pool = build_pool(settings, store, shared)
    # Each account's calls leave through its own proxy, or KIMI_PROXY.
    routes = ProxyRoutes(settings.kimi_proxy, pool.proxy_of, ca_file=settings.kimi_ca_file)
    adapter = KimiWebAdapter(routes, settings, token_cache=shared or store)
    fetcher = SafeFetcher(
        policy_vet(settings.allow_loopback_fetch),
        FetchLimits(
            max_bytes=settings.max_attachment_bytes,
            timeout_s=settings.attachment_transfer_timeout_s,
            connect_timeout_s=settings.connect_timeout_s,
        ),
    )
    files = FileService(_file_registry(store, shared), adapter, settings.max_attachment_bytes)
    attachments = Attachments(
        SourceLoader(fetcher, settings.max_attachment_bytes),
        adapter,
        files,
        AttachmentLimits(max_attachments=settings.max_attachments),
    )
    background = BackgroundTasks()
    # Names this process in the conversation store, so chats it leaves behind can be told from live ones.
    instance = uuid.uuid4().hex[:12]
    conversations: SqliteConversations | RedisState = shared or SqliteConversations(store)
    janitor = Janitor(
        conversations,
        adapter,
        instance,
        settings.sweep_interval_s,
        attempts=settings.cleanup_attempts,
        retry_after_s=settings.cleanup_retry_s,
    )
    app[UPSTREAM] = adapter
    app[POOL] = app[_SCHEDULER] = pool
    app[FILES] = files
    app[TOKENS] = await _token_counter(settings)
    app[RESPONSES] = _response_store(store, shared)
    chores = _access(app, settings, store=store, shared=shared, pool=pool, adapter=adapter)
    app[SERVICE] = ChatService(
        adapter,
        ModelCatalog(adapter, settings.models_cache_ttl_s),
        background,
        pool,
        conversations,
        attachments=attachments,
        instance=instance,
        conversation_ttl_s=settings.conversation_ttl_s,
        auto_delete=settings.auto_delete,
        failover=FailoverPolicy(
            attempts=settings.failover_attempts,
            capacity_wait_s=settings.capacity_wait_s,
            free_tier_retry_after_s=settings.free_tier_retry_after_s,
            overload_fallback_model=settings.overload_fallback_model,
        ),
        keepalive_s=settings.keepalive_s,
        aliases=ModelAliases(settings.model_alias_rules),
        max_prompt_chars=settings.max_prompt_chars,
        observer=app[_OBSERVER],
    )
    prober = asyncio.create_task(
        probe_forever(
            pool, adapter.check_token, adapter.keep_fresh, settings.probe_interval_s, settings.token_warmup_concurrency
        ),
        name="prober",
    )
    sweeper = asyncio.create_task(janitor.run(), name="sweeper")
    log.info(
        "relaying to %s with %d server account(s); client tokens %s",
        settings.kimi_base_url,
        len([a for a in pool.accounts() if a.kind == "server"]),
        "accepted" if app[ACCESS].client_tokens else "refused",
    )
    try:
        yield
    finally:
        for task in (prober, sweeper, *chores):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await background.drain(CLEANUP_GRACE_S)
        await conversations.close()
        await adapter.watchdog.stop()
        await routes.close()
        await fetcher.close()
        store.close()

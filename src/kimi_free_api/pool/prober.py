"""Accounts heal by themselves: dead ones are re-checked periodically, live ones get fresh access tokens early."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from kimi_free_api.core.errors import GatewayError
from kimi_free_api.pool.scheduler import Scheduler

log = logging.getLogger(__name__)


async def probe_forever(
    scheduler: Scheduler,
    check: Callable[[str], Awaitable[bool]],
    keep_fresh: Callable[[str, float], Awaitable[None]],
    interval_s: float,
) -> None:
    while True:
        await asyncio.sleep(interval_s)
        await probe_once(scheduler, check, keep_fresh, interval_s)


async def probe_once(
    scheduler: Scheduler,
    check: Callable[[str], Awaitable[bool]],
    keep_fresh: Callable[[str, float], Awaitable[None]],
    interval_s: float,
) -> None:
    scheduler.forget_idle_client_accounts()
    for account in scheduler.accounts():
        if account.dead and account.kind == "client":
            # Not re-checked: a bogus token would be tried against Kimi every round for as long as it is kept.
            # Forgotten instead, its next request (if any) tries it once more at the client's own cost.
            if account.in_flight == 0:
                scheduler.forget(account)
            continue
        try:
            if account.dead:
                if await check(account.token):
                    scheduler.revive(account)
                    log.info("account %s answers again; back in the pool", account.id)
            elif account.kind == "server":
                # Refresh now what would expire before the next round, instead of during a request.
                await keep_fresh(account.token, interval_s)
        except GatewayError as exc:
            log.info("probing account %s failed: %s", account.id, exc.message)

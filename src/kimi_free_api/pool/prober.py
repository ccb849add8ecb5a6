"""Accounts heal by themselves: dead ones are re-checked periodically, live ones get fresh access tokens early.

Server accounts' tokens are also exchanged right at start-up, a few at a time: a cold pool's first burst would
otherwise pay one exchange per request (500 cold accounts: about +1 s first-byte p99, `make bench`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from kimi_free_api.core.errors import GatewayError
from kimi_free_api.pool.accounts import Account
from kimi_free_api.pool.scheduler import Scheduler

log = logging.getLogger(__name__)


async def probe_forever(
    scheduler: Scheduler,
    check: Callable[[str], Awaitable[bool]],
    keep_fresh: Callable[[str, float], Awaitable[None]],
    interval_s: float,
    warmup_concurrency: int = 8,
) -> None:
    if warmup_concurrency > 0:
        await warm_up(scheduler, keep_fresh, interval_s, warmup_concurrency)
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


async def warm_up(
    scheduler: Scheduler, keep_fresh: Callable[[str, float], Awaitable[None]], within_s: float, concurrency: int
) -> None:
    """Exchanges every live server account's token now, `concurrency` at a time (requests needing one meanwhile
    share the exchange under way rather than starting another)."""
    gate = asyncio.Semaphore(concurrency)

    async def warm(account: Account) -> None:
        async with gate:
            try:
                await keep_fresh(account.token, within_s)
            except GatewayError as exc:
                # Left to the request that needs it: that one fails over and marks the account as it deserves.
                log.info("exchanging account %s's token at start-up failed: %s", account.id, exc.message)

    await asyncio.gather(*(warm(a) for a in scheduler.accounts() if a.kind == "server" and not a.dead))

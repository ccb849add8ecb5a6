"""The server accounts the pool should hold, following the store: accounts added, disabled, relabelled or removed
there (by the admin console of any instance sharing the store, or by the CLI) join, change or leave the running
pool without a restart. Answers already running on an account that leaves finish on it."""

from __future__ import annotations

from collections.abc import Iterable

from kimi_free_api.core.access.stored import StoredAccountView
from kimi_free_api.pool.accounts import Account
from kimi_free_api.pool.scheduler import Scheduler


def follow_store(pool: Scheduler, stored: Iterable[StoredAccountView], configured: frozenset[str]) -> list[Account]:
    """Makes the pool's server accounts those `configured` (KIMI_TOKENS) plus the stored ones not disabled;
    answers the stored accounts that are in the pool."""
    wanted = {record.id: record for record in stored if not record.disabled}
    for account in pool.accounts():
        if account.kind == "server" and account.id not in configured and account.id not in wanted:
            pool.remove_server_account(account.id)
    joined: list[Account] = []
    for record in wanted.values():
        account = pool.add_server_account(record.token)  # the same object when it is there already
        account.label, account.proxy = record.label, record.proxy
        joined.append(account)
    return joined

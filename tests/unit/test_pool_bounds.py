"""Client-sent Kimi tokens cannot grow the pool without bound, and dead ones are not re-checked for ever."""

from __future__ import annotations

from kimi_free_api.pool.accounts import account_id
from kimi_free_api.pool.prober import probe_once
from kimi_free_api.pool.scheduler import PoolSettings, Scheduler


def _pool(max_client_accounts: int) -> Scheduler:
    return Scheduler(PoolSettings(min_interval_s=0.0, max_client_accounts=max_client_accounts))


def _ids(pool: Scheduler) -> set[str]:
    return {account.id for account in pool.accounts()}


async def test_client_accounts_are_an_lru_of_bounded_size() -> None:
    pool = _pool(3)
    server = pool.add_server_account("server-token")
    for token in ("a", "b", "c"):
        pool.any_token((token,))
    pool.any_token(("a",))  # used again: now the most recent
    pool.any_token(("d",))  # one too many: "b", the least recently used, is forgotten
    assert _ids(pool) == {server.id, account_id("a"), account_id("c"), account_id("d")}
    for index in range(500):
        pool.any_token((f"bogus-{index}",))
    assert len(pool.accounts()) == 4  # three client accounts and the server's, however many tokens came


async def test_an_account_in_use_is_never_the_one_forgotten() -> None:
    pool = _pool(2)
    lease = await pool.acquire(("busy",), frozenset(), 1.0, None)
    pool.any_token(("x",))
    pool.any_token(("y",))
    assert account_id("busy") in _ids(pool)
    assert account_id("x") not in _ids(pool)
    lease.release()


async def test_dead_client_accounts_are_forgotten_not_probed() -> None:
    pool = _pool(10)
    server = pool.add_server_account("server-token")
    pool.any_token(("bogus",))
    for account in pool.accounts():
        account.dead = True
    checked: list[str] = []

    async def check(token: str) -> bool:
        checked.append(token)
        return False

    async def keep_fresh(token: str, within_s: float) -> None:
        raise AssertionError("no live account to refresh")

    await probe_once(pool, check, keep_fresh, 60.0)
    assert checked == ["server-token"]  # the server's own account is still probed back to life
    assert _ids(pool) == {server.id}
    await probe_once(pool, check, keep_fresh, 60.0)
    assert checked == ["server-token", "server-token"]

"""The account scheduler, shared by both token modes (client-sent Kimi tokens and server-configured accounts).

Among the accounts a request may use, the healthy one with the fewest answers in flight wins, round-robin on ties.
An account serves at most `cap` answers at once (Kimi refuses a second overlapping stream) and starts them at
least `min_interval_s` apart; failures put it in a cooldown or mark it dead (`pool/accounts.py`). When nothing is
free, a request waits for the first account to free up, up to its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from kimi_free_api.core.errors import GatewayError, RateLimited, Unauthorized, UpstreamUnavailable
from kimi_free_api.core.ports import WaitHook
from kimi_free_api.pool.accounts import Account, CooldownPolicy, account_id

# Client-sent tokens not used for this long are forgotten (their health included).
_CLIENT_ACCOUNT_TTL_S = 24 * 3600


@dataclass(slots=True)
class PoolSettings:
    cap: int = 1
    min_interval_s: float = 0.5
    keepalive_s: float = 15.0
    policy: CooldownPolicy = field(default_factory=CooldownPolicy)


class _Lease:
    __slots__ = ("_account", "_pool", "_released")

    def __init__(self, pool: Scheduler, account: Account) -> None:
        self._pool = pool
        self._account = account
        self._released = False

    @property
    def token(self) -> str:
        return self._account.token

    @property
    def account_id(self) -> str:
        return self._account.id

    def succeeded(self) -> None:
        self._account.record_success()

    def failed(self, error: GatewayError) -> None:
        self._account.record_failure(error, asyncio.get_running_loop().time(), self._pool.settings.policy)
        self._pool.notify()

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._account.in_flight -= 1
            self._pool.notify()


class Scheduler:
    def __init__(self, settings: PoolSettings) -> None:
        self.settings = settings
        self._accounts: dict[str, Account] = {}
        self._server: list[Account] = []
        self._ties = itertools.count()
        self._changed = asyncio.Event()

    # --- membership ---

    def add_server_account(self, token: str) -> Account:
        existing = self._accounts.get(account_id(token))
        if existing is not None and existing.kind == "server":
            return existing
        account = Account(token=token, kind="server", cap=self.settings.cap)
        self._accounts[account.id] = account
        self._server.append(account)
        return account

    def remove_server_account(self, account_id_: str) -> bool:
        account = self._accounts.get(account_id_)
        if account is None or account.kind != "server":
            return False
        self._server.remove(account)
        del self._accounts[account_id_]
        return True

    @property
    def has_server_accounts(self) -> bool:
        return bool(self._server)

    def accounts(self) -> list[Account]:
        return list(self._accounts.values())

    def _candidates(self, tokens: tuple[str, ...]) -> list[Account]:
        if not tokens:
            return list(self._server)
        found: list[Account] = []
        for token in dict.fromkeys(tokens):
            account = self._accounts.get(account_id(token))
            if account is None:
                account = Account(token=token, kind="client", cap=self.settings.cap)
                self._accounts[account.id] = account
            found.append(account)
        return found

    def any_token(self, tokens: tuple[str, ...]) -> str | None:
        """A token for calls that need any working account (the model catalog)."""
        usable = [a for a in self._candidates(tokens) if not a.dead]
        return usable[0].token if usable else None

    # --- scheduling ---

    def notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _pick(self, ready: list[Account]) -> Account:
        fewest = min(a.in_flight for a in ready)
        tied = [a for a in ready if a.in_flight == fewest]
        return tied[next(self._ties) % len(tied)]

    async def acquire(
        self, tokens: tuple[str, ...], exclude: frozenset[str], wait_s: float, on_wait: WaitHook | None
    ) -> _Lease:
        loop = asyncio.get_running_loop()
        candidates = self._candidates(tokens)
        if not candidates:
            raise UpstreamUnavailable(
                "No Kimi account is configured on this server (KIMI_TOKENS or `kimi-free-api accounts add`)."
            )
        deadline = loop.time() + wait_s
        keepalive_at = loop.time() + self.settings.keepalive_s
        while True:
            now = loop.time()
            usable = [a for a in candidates if not a.dead and a.id not in exclude]
            if not usable:
                raise _nothing_usable(candidates, tokens)
            ready = [
                a
                for a in usable
                if a.cooldown_until <= now
                and a.in_flight < a.cap
                and now - a.last_start >= self.settings.min_interval_s
            ]
            if ready:
                account = self._pick(ready)
                account.in_flight += 1
                account.last_start = now
                account.last_used = time.time()
                return _Lease(self, account)
            soonest = _soonest_change(usable, now, self.settings.min_interval_s)
            if now >= deadline:
                raise RateLimited(
                    "Every Kimi account for this request is busy or cooling down; try again shortly.",
                    code="accounts_busy",
                    retry_after=max(1.0, (soonest or now + 1.0) - now),
                )
            wake = min(deadline, keepalive_at, soonest if soonest is not None else deadline)
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), max(0.0, wake - now))
            if on_wait is not None and loop.time() >= keepalive_at:
                keepalive_at = loop.time() + self.settings.keepalive_s
                await on_wait()

    def forget_idle_client_accounts(self) -> None:
        horizon = time.time() - _CLIENT_ACCOUNT_TTL_S
        for account in list(self._accounts.values()):
            if account.kind == "client" and account.in_flight == 0 and account.last_used < horizon:
                del self._accounts[account.id]


def _soonest_change(accounts: Iterable[Account], now: float, min_interval_s: float) -> float | None:
    """When a waiting request should look again (a release also wakes it); None if only a release can help."""
    times = [a.cooldown_until for a in accounts if a.cooldown_until > now]
    times += [a.last_start + min_interval_s for a in accounts if a.last_start + min_interval_s > now]
    return min(times) if times else None


def _nothing_usable(candidates: list[Account], tokens: tuple[str, ...]) -> GatewayError:
    last = max(candidates, key=lambda a: a.last_error_at)
    reason = f" Last error: {last.last_error}" if last.last_error else ""
    if tokens:
        return Unauthorized(f"Kimi rejected every token sent with this request.{reason}", code="invalid_kimi_token")
    return UpstreamUnavailable(f"Every Kimi account configured on this server is unusable.{reason}")

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
import math
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kimi_free_api.core.errors import ChatNotFound, GatewayError, RateLimited, Unauthorized, UpstreamUnavailable
from kimi_free_api.core.ports import WaitHook
from kimi_free_api.pool.accounts import Account, CooldownPolicy, account_id

# Client-sent tokens not used for this long are forgotten (their health included).
_CLIENT_ACCOUNT_TTL_S = 24 * 3600
# Slots taken in a shared store expire unless renewed, so a crashed instance frees its accounts by itself.
_LEASE_S = 60.0
# Other instances' releases are not announced: a waiting request looks again this often.
_SHARED_POLL_S = 0.1


class SharedAccounts(Protocol):
    """The half of the pool's state that several gateway instances share (state/redis.py)."""

    async def claim(self, account_id: str, cap: int, lease_id: str, lease_s: float, spacing_s: float) -> bool: ...

    async def renew(self, account_id: str, lease_id: str, lease_s: float) -> None: ...

    async def release(self, account_id: str, lease_id: str) -> None: ...

    async def cool(self, account_id: str, until_s: float) -> None: ...

    async def kill(self, account_id: str) -> None: ...

    async def revive(self, account_id: str) -> None: ...

    async def health(self, account_ids: list[str]) -> dict[str, tuple[float, bool]]: ...


@dataclass(slots=True)
class PoolSettings:
    cap: int = 1
    min_interval_s: float = 0.5
    keepalive_s: float = 15.0
    policy: CooldownPolicy = field(default_factory=CooldownPolicy)
    # Client-sent tokens tracked at most; beyond it the least recently used idle one is forgotten.
    max_client_accounts: int = 10_000


class _Lease:
    __slots__ = ("_account", "_pool", "_released", "id")

    def __init__(self, pool: Scheduler, account: Account, lease_id: str) -> None:
        self._pool = pool
        self._account = account
        self._released = False
        self.id = lease_id

    @property
    def token(self) -> str:
        return self._account.token

    @property
    def account_id(self) -> str:
        return self._account.id

    def succeeded(self) -> None:
        self._account.record_success()

    def failed(self, error: GatewayError) -> None:
        now = asyncio.get_running_loop().time()
        self._account.record_failure(error, now, self._pool.settings.policy)
        self._pool.share_health(self._account, now)
        self._pool.notify()

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._account.in_flight -= 1
            self._pool.returned(self)
            self._pool.notify()


HealthSink = Callable[[Account, float], None]


class Scheduler:
    def __init__(
        self, settings: PoolSettings, shared: SharedAccounts | None = None, on_health: HealthSink | None = None
    ) -> None:
        self.settings = settings
        self._shared = shared
        # Called with (account, loop time) when an account's health changes, so it survives restarts.
        self._on_health = on_health
        self._accounts: dict[str, Account] = {}
        # Client accounts' ids, least recently used first.
        self._clients: OrderedDict[str, None] = OrderedDict()
        self._server: list[Account] = []
        self._ties = itertools.count()
        self._changed = asyncio.Event()
        self._held: dict[str, _Lease] = {}
        self._chores: set[asyncio.Task[None]] = set()
        self._renewer: asyncio.Task[None] | None = None

    # --- membership ---

    def add_server_account(self, token: str, proxy: str = "") -> Account:
        existing = self._accounts.get(account_id(token))
        if existing is not None and existing.kind == "server":
            existing.proxy = proxy or existing.proxy
            return existing
        account = Account(token=token, kind="server", cap=self.settings.cap, proxy=proxy)
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

    def get(self, account_id_: str) -> Account | None:
        return self._accounts.get(account_id_)

    def reroute(self, account_id_: str, proxy: str) -> None:
        """Sends the account's traffic through another proxy. The failures that rested it may have been the old
        route's, so a changed route starts afresh rather than sitting out a cooldown the admin just fixed."""
        account = self._accounts.get(account_id_)
        if account is not None and account.proxy != proxy:
            account.proxy = proxy
            self.revive(account)

    def server_tokens(self) -> tuple[str, ...]:
        return tuple(a.token for a in self._server)

    def proxy_of(self, token: str) -> str:
        """The proxy of the account this token belongs to ("" for none of its own)."""
        account = self._accounts.get(account_id(token))
        return account.proxy if account is not None else ""

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
                self._clients[account.id] = None
                self._evict_clients()
            elif account.kind == "client":
                self._clients.move_to_end(account.id)
            found.append(account)
        return found

    def _evict_clients(self) -> None:
        excess = len(self._clients) - self.settings.max_client_accounts
        if excess <= 0:
            return
        for name in list(itertools.islice(self._clients, excess * 2)):
            if self._accounts[name].in_flight == 0:
                self.forget(self._accounts[name])
                excess -= 1
                if not excess:
                    return

    def forget(self, account: Account) -> None:
        """Drops a client account (its health too): the next request that sends its token starts it afresh."""
        if account.kind == "client":
            self._accounts.pop(account.id, None)
            self._clients.pop(account.id, None)

    def any_token(self, tokens: tuple[str, ...]) -> str | None:
        """A token for calls that need any working account (the model catalog)."""
        usable = [a for a in self._candidates(tokens) if not a.dead]
        return usable[0].token if usable else None

    # --- scheduling ---

    def notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _order(self, ready: list[Account]) -> list[Account]:
        """Fewest in flight first; among equals, rotating, so idle accounts take turns."""
        if not ready:
            return []
        turn = next(self._ties)
        ranked = sorted(ready, key=lambda a: a.in_flight)
        fewest = [a for a in ranked if a.in_flight == ranked[0].in_flight]
        rotated = fewest[turn % len(fewest) :] + fewest[: turn % len(fewest)]
        return rotated + ranked[len(fewest) :]

    async def _claim(self, account: Account) -> _Lease | None:
        lease_id = uuid.uuid4().hex
        if self._shared is not None:
            claimed = await self._shared.claim(
                account.id, account.cap, lease_id, _LEASE_S, self.settings.min_interval_s
            )
            if not claimed:
                return None
        lease = _Lease(self, account, lease_id)
        self._held[lease_id] = lease
        if self._shared is not None and (self._renewer is None or self._renewer.done()):
            self._renewer = asyncio.get_running_loop().create_task(self._renew_leases(), name="lease-renewer")
        return lease

    def returned(self, lease: _Lease) -> None:
        self._held.pop(lease.id, None)
        if self._shared is not None:
            self._chore(self._shared.release(lease.account_id, lease.id))

    def share_health(self, account: Account, now: float) -> None:
        if self._on_health is not None:
            self._on_health(account, now)
        if self._shared is None:
            return
        if account.dead:
            self._chore(self._shared.kill(account.id))
        elif account.cooldown_until > now:
            self._chore(self._shared.cool(account.id, account.cooldown_until - now))

    def revive(self, account: Account) -> None:
        account.revive()
        if self._on_health is not None:
            self._on_health(account, asyncio.get_running_loop().time())
        if self._shared is not None:
            self._chore(self._shared.revive(account.id))
        self.notify()

    def _chore(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    async def _renew_leases(self) -> None:
        assert self._shared is not None
        while self._held:
            await asyncio.sleep(_LEASE_S / 3)
            for lease in list(self._held.values()):
                await self._shared.renew(lease.account_id, lease.id, _LEASE_S)

    async def _sync(self, accounts: list[Account], now: float) -> None:
        """Takes in what other instances learnt about these accounts (cooldowns, dead tokens)."""
        assert self._shared is not None
        for name, (cooling_s, dead) in (await self._shared.health([a.id for a in accounts])).items():
            account = self._accounts.get(name)
            if account is not None:
                # Only bad news is taken over: this instance's own prober brings an account back.
                account.dead = account.dead or dead
                account.cooldown_until = max(account.cooldown_until, now + cooling_s)

    async def acquire(
        self,
        tokens: tuple[str, ...],
        exclude: frozenset[str],
        wait_s: float,
        on_wait: WaitHook | None,
        only: str = "",
    ) -> _Lease:
        loop = asyncio.get_running_loop()
        candidates = self._candidates(tokens)
        if only:
            candidates = [a for a in candidates if a.id == only]
            if not candidates:
                raise ChatNotFound(
                    "The conversation belongs to a Kimi account this request may not use.", param="conversation_id"
                )
        if not candidates:
            raise UpstreamUnavailable(
                "No Kimi account is configured on this server (KIMI_TOKENS or `kimi-free-api accounts add`)."
            )
        deadline = loop.time() + wait_s
        keepalive_at = loop.time() + self.settings.keepalive_s
        while True:
            now = loop.time()
            if self._shared is not None:
                await self._sync(candidates, now)
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
            for account in self._order(ready):
                lease = await self._claim(account)
                if lease is not None:
                    account.in_flight += 1
                    account.last_start = loop.time()
                    account.last_used = time.time()
                    return lease
            soonest = _soonest_change(usable, now, self.settings.min_interval_s)
            if self._shared is not None:
                soonest = min(soonest or math.inf, now + _SHARED_POLL_S)
            if now >= deadline or _cooling_past(usable, deadline):
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
                self.forget(account)


def _soonest_change(accounts: Iterable[Account], now: float, min_interval_s: float) -> float | None:
    """When a waiting request should look again (a release also wakes it); None if only a release can help."""
    times = [a.cooldown_until for a in accounts if a.cooldown_until > now]
    times += [a.last_start + min_interval_s for a in accounts if a.last_start + min_interval_s > now]
    return min(times) if times else None


def _cooling_past(accounts: list[Account], deadline: float) -> bool:
    """Whether every account rests beyond the deadline: waiting would only delay the same refusal (a busy account
    may be released at any moment, so only cooldowns count)."""
    return all(a.cooldown_until > deadline for a in accounts)


def _nothing_usable(candidates: list[Account], tokens: tuple[str, ...]) -> GatewayError:
    last = max(candidates, key=lambda a: a.last_error_at)
    reason = f" Last error: {last.last_error}" if last.last_error else ""
    if tokens:
        return Unauthorized(f"Kimi rejected every token sent with this request.{reason}", code="invalid_kimi_token")
    return UpstreamUnavailable(f"Every Kimi account configured on this server is unusable.{reason}")

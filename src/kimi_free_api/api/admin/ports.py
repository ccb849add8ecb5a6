"""What the admin surface needs from the store, the pool, the key ring and the upstream (the composition root
passes them in; the HTTP layer does not import the side packages)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web

from kimi_free_api.core.access.callers import KeyLimits
from kimi_free_api.core.access.plan import AccountPlan
from kimi_free_api.core.access.stored import StoredAccountView


class StoredKeyView(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def created(self) -> float: ...
    @property
    def limits(self) -> KeyLimits: ...


class AdminRecords(Protocol):
    """The durable half (state/sqlite.py): quick local calls, made from a worker thread."""

    def add_account(self, account_id: str, token: str, label: str = "", proxy: str = "") -> None: ...
    def list_accounts(self) -> Sequence[StoredAccountView]: ...
    def update_account(self, account_id: str, *, label: str, disabled: bool, proxy: str) -> bool: ...
    def remove_account(self, account_id: str) -> bool: ...
    def create_key(self, name: str = "", limits: KeyLimits = ...) -> tuple[StoredKeyView, str]: ...
    def list_keys(self) -> Sequence[StoredKeyView]: ...
    def set_key_limits(self, key_id: str, limits: KeyLimits) -> bool: ...
    def revoke_key(self, key_id: str) -> bool: ...


class EndedSessions(Protocol):
    """Console sessions ended by logging out, kept where every instance reads them: the SQLite file
    (state/sqlite.py) or Redis (state/redis.py). A cookie is signed, so only its end must be shared. Issue times
    are whole milliseconds (wall clock), expiries seconds."""

    async def end_session(self, nonce: str, expires_at: float) -> None: ...
    async def end_sessions_before(self, issued_ms: int) -> None: ...
    async def session_ended(self, nonce: str, issued_ms: int) -> bool: ...


class LiveAccount(Protocol):
    label: str
    proxy: str

    @property
    def id(self) -> str: ...
    @property
    def token(self) -> str: ...
    @property
    def kind(self) -> str: ...

    def describe(self, now: float) -> dict[str, object]: ...


class LivePool(Protocol):
    """The running scheduler (pool/scheduler.py): accounts join and leave it without a restart."""

    def accounts(self) -> Sequence[LiveAccount]: ...
    def get(self, account_id: str) -> LiveAccount | None: ...
    def add_server_account(self, token: str) -> LiveAccount: ...
    def reroute(self, account_id: str, proxy: str) -> None: ...
    def remove_server_account(self, account_id: str) -> bool: ...


class KeyCache(Protocol):
    def forget(self) -> None: ...


class PlanSource(Protocol):
    async def plan(self, token: str) -> AccountPlan: ...
    async def check_token(self, token: str) -> bool: ...


@dataclass(slots=True)
class AdminContext:
    admin_key: str
    records: AdminRecords
    pool: LivePool
    keys: KeyCache
    plans: PlanSource
    ended: EndedSessions
    # Ids of the keys configured in API_KEYS (shown, not editable).
    configured_keys: tuple[str, ...] = ()
    session_ttl_s: float = 12 * 3600.0
    # Plans fetched lately: account id -> (loop time, answer).
    plan_cache: dict[str, tuple[float, dict[str, object]]] = field(default_factory=dict)
    # Sessions this instance has seen ended, until they would have expired anyway: nonce -> expiry. Spares the
    # store a lookup for a cookie that is refused already.
    ended_sessions: dict[str, float] = field(default_factory=dict)


ADMIN = web.AppKey("admin", AdminContext)

"""One Kimi account as the scheduler sees it, and how each kind of failure changes its health."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal, Protocol

from kimi_free_api.core.credentials import credential_id
from kimi_free_api.core.errors import (
    AccountBusy,
    FreeTierOverloaded,
    GatewayError,
    QuotaExceeded,
    RateLimited,
    Unauthorized,
    UpstreamError,
)
from kimi_free_api.redact import mask_proxy, mask_token

Kind = Literal["server", "client"]


class SavedHealth(Protocol):
    @property
    def dead(self) -> bool: ...

    @property
    def cooldown_until(self) -> float:
        """Wall clock."""
        ...

    @property
    def last_error(self) -> str: ...

    @property
    def last_error_at(self) -> float: ...


account_id = credential_id


@dataclass(slots=True)
class CooldownPolicy:
    rate_limited_s: float = 60.0
    quota_s: float = 3600.0
    busy_s: float = 2.0
    unavailable_s: float = 30.0
    # Consecutive upstream failures after which an account rests for `unavailable_s`.
    failures_before_rest: int = 3


@dataclass(slots=True)
class Account:
    token: str
    kind: Kind
    cap: int = 1
    id: str = ""
    in_flight: int = 0
    last_start: float = float("-inf")
    cooldown_until: float = 0.0
    dead: bool = False
    last_error: str = ""
    last_error_at: float = 0.0
    last_used: float = 0.0
    successes: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    created: float = field(default_factory=time.monotonic)
    # Set in the admin console (or `accounts add --label`); stored with the account.
    label: str = ""
    # This account's Kimi traffic goes through this proxy URL; empty means the global KIMI_PROXY.
    proxy: str = ""

    def __post_init__(self) -> None:
        self.id = self.id or account_id(self.token)

    def health(self, now: float) -> str:
        if self.dead:
            return "dead"
        if self.cooldown_until > now:
            return "cooling"
        if self.in_flight >= self.cap:
            return "busy"
        return "healthy"

    def record_failure(self, error: GatewayError, now: float, policy: CooldownPolicy) -> None:
        self.failures += 1
        self.last_error = f"{type(error).__name__}: {error.message}"[:300]
        self.last_error_at = time.time()
        if isinstance(error, FreeTierOverloaded):
            return  # Kimi refuses every free account alike: this one is no worse than the rest
        self.consecutive_failures += 1
        if isinstance(error, Unauthorized):
            self.dead = True
        elif isinstance(error, QuotaExceeded):
            self._rest(now, error.retry_after or policy.quota_s)
        elif isinstance(error, AccountBusy):
            self._rest(now, error.retry_after or policy.busy_s)
        elif isinstance(error, RateLimited):
            self._rest(now, error.retry_after or policy.rate_limited_s)
        elif isinstance(error, UpstreamError) and self.consecutive_failures >= policy.failures_before_rest:
            self._rest(now, error.retry_after or policy.unavailable_s)

    def record_success(self) -> None:
        self.successes += 1
        self.consecutive_failures = 0

    def restore(self, health: SavedHealth) -> None:
        """Health saved by an earlier run (state/sqlite.py `AccountHealth`)."""
        self.dead = bool(health.dead)
        remaining = health.cooldown_until - time.time()
        if remaining > 0:
            self.cooldown_until = time.monotonic() + remaining
        self.last_error = health.last_error
        self.last_error_at = health.last_error_at

    def revive(self) -> None:
        self.dead = False
        self.cooldown_until = 0.0
        self.consecutive_failures = 0

    def _rest(self, now: float, seconds: float) -> None:
        self.cooldown_until = max(self.cooldown_until, now + seconds)

    def cooldown_wall(self, now: float) -> float:
        """The cooldown's end on the wall clock (the scheduler's clock is the event loop's)."""
        return time.time() + self.cooldown_until - now if self.cooldown_until > now else 0.0

    def describe(self, now: float) -> dict[str, object]:
        """The admin view: never the token itself."""
        cooling = self.cooldown_until > now
        return {
            "id": self.id,
            "kind": self.kind,
            "label": self.label,
            "proxy": mask_proxy(self.proxy) or None,
            "token": mask_token(self.token),
            "health": self.health(now),
            "in_flight": self.in_flight,
            "max_in_flight": self.cap,
            "cooldown_remaining_s": round(self.cooldown_until - now, 1) if cooling else 0,
            "cooldown_until": round(self.cooldown_wall(now)) if cooling else None,
            "last_error": self.last_error or None,
            "last_error_at": round(self.last_error_at) if self.last_error_at else None,
            "successes": self.successes,
            "failures": self.failures,
        }

"""An API-key caller and the limits an operator set on its key: requests per minute, concurrent answers, models."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

from kimi_free_api.core.errors import GatewayError, RateLimited

# The sliding window requests-per-minute limits count over.
RPM_WINDOW_S = 60.0


@dataclass(frozen=True, slots=True)
class KeyLimits:
    """0 and () mean "no limit"."""

    rpm: int = 0
    concurrent: int = 0
    models: tuple[str, ...] = ()

    def allows(self, model: str) -> bool:
        return not self.models or model in self.models


NO_LIMITS = KeyLimits()


@dataclass(frozen=True, slots=True)
class Caller:
    key_id: str
    name: str
    limits: KeyLimits = NO_LIMITS


# The API key the current request authenticated with, if any (set by the key check, read by the answer path).
current_caller: ContextVar[Caller | None] = ContextVar("current_caller", default=None)


class KeyRateLimited(RateLimited):
    code = "key_rate_limit_exceeded"


class KeyBusy(RateLimited):
    code = "key_concurrency_limit_exceeded"


class ModelNotAllowed(GatewayError):
    status = 403
    type = "permission_error"
    code = "model_not_allowed"


class KeyLimiter(Protocol):
    """Counts a key's requests and answers in progress: in this process, or across instances through Redis."""

    async def admit(self, key_id: str, rpm: int) -> float:
        """Counts one request; 0 if it is within `rpm` per minute, else the seconds until one more would be."""
        ...

    async def hold(self, key_id: str, cap: int, slot_id: str) -> bool:
        """Takes one of the key's `cap` answer slots, if one is free."""
        ...

    async def release(self, key_id: str, slot_id: str) -> None: ...


def rate_limited(caller: Caller, retry_after_s: float) -> KeyRateLimited:
    return KeyRateLimited(
        f"The API key {caller.name or caller.key_id!r} is limited to {caller.limits.rpm} requests per minute.",
        retry_after=retry_after_s,
    )


def too_many_answers(caller: Caller) -> KeyBusy:
    return KeyBusy(
        f"The API key {caller.name or caller.key_id!r} may have {caller.limits.concurrent} answer(s) in progress "
        "at once; wait for one to end.",
        retry_after=1.0,
    )


def model_refused(caller: Caller, model: str) -> ModelNotAllowed:
    allowed = ", ".join(caller.limits.models)
    return ModelNotAllowed(
        f"The API key {caller.name or caller.key_id!r} may not use the model {model!r} (allowed: {allowed}).",
        param="model",
    )

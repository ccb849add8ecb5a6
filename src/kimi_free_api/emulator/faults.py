"""Fault rules: make the next matching calls fail in one of the ways Kimi (or the way to Kimi) fails."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from kimi_free_api.emulator.config import (
    InvalidSetting,
    reject_unknown,
    require_choice,
    require_int,
    require_optional_str,
)
from kimi_free_api.emulator.errors import (
    CHAT_NOT_FOUND,
    FREE_TIER_OVERLOADED,
    STREAM_BUSY,
    UNAUTHENTICATED,
    BadGateway,
    ConnectError,
    Failure,
)
from kimi_free_api.emulator.state import ENDPOINTS

# Refused with an HTTP error status before any frame.
_REFUSALS = {
    "unauthenticated": UNAUTHENTICATED,
    "rate_limited": Failure("resource_exhausted", "too many requests, slow down"),
    # Kimi's wording for its usage limit is unknown; this reason is the emulator's own.
    "quota": Failure("resource_exhausted", "the usage limit of this account is reached", "usage.limit_reached"),
    "unavailable": Failure("unavailable", "the service is temporarily unavailable"),
    "internal": Failure("internal", "internal error"),
    "busy": STREAM_BUSY,
    "not_found": CHAT_NOT_FOUND,
}
# Errors sent inside a Chat stream that has already started.
_STREAM_ERRORS = {
    "stream_error": Failure("internal", "Kimi 现在有点累了，晚一点再来问问我吧！"),
    "content_filter": Failure(
        "permission_denied", "the conversation touches content that cannot be shown", "chat.forbidden"
    ),
    # Streams answer HTTP 200, so a token rejected by the generation arrives in-band.
    "stream_unauthenticated": UNAUTHENTICATED,
    "free_tier_overloaded": FREE_TIER_OVERLOADED,
}
# Failures reported as a `block.exception` inside the answer (evidence row 48), then `done`: reason, message.
_BLOCK_EXCEPTIONS = {
    "overloaded": ("REASON_COMPLETION_OVERLOADED", "The current model is overloaded, please try again later."),
}
# Refusals of the whole turn: sent right after the chat and message frames, before any thinking or text.
BEFORE_REPLY_KINDS = frozenset({"stream_unauthenticated", "free_tier_overloaded"})
# Sent in the end-of-stream trailer whatever `error_style` says, as captured.
TRAILER_KINDS = frozenset({"free_tier_overloaded"})
# Connection-level misbehaviour inside a started Chat stream.
_STREAM_CUTS = ("disconnect", "stall")
# The files a parse call asks about are reported as failed to parse (endpoint `parse` only).
PARSE_FAILED = "parse_failed"
FAULT_KINDS = (*_REFUSALS, "bad_gateway", *_STREAM_ERRORS, *_BLOCK_EXCEPTIONS, *_STREAM_CUTS, PARSE_FAILED)
IN_STREAM_KINDS = frozenset((*_STREAM_ERRORS, *_BLOCK_EXCEPTIONS, *_STREAM_CUTS))
BLOCK_EXCEPTION_KINDS = frozenset(_BLOCK_EXCEPTIONS)
DEFAULT_RATE_LIMIT_RETRY_S = 1


@dataclass(frozen=True)
class Fault:
    kind: str
    times: int = 1
    endpoint: str = "chat"
    user_id: str | None = None
    after_events: int = 0
    retry_after: int | None = None
    message: str | None = None

    def __post_init__(self) -> None:
        require_choice("kind", self.kind, FAULT_KINDS)
        require_int("times", self.times, 1)
        require_choice("endpoint", self.endpoint, ENDPOINTS)
        require_int("after_events", self.after_events)
        require_optional_str("user_id", self.user_id)
        require_optional_str("message", self.message)
        if self.retry_after is not None:
            require_int("retry_after", self.retry_after)
        if self.endpoint != "chat" and self.kind in IN_STREAM_KINDS:
            raise InvalidSetting("kind", f"`{self.kind}` happens inside a Chat stream; endpoint must be chat")
        if self.kind == PARSE_FAILED and self.endpoint != "parse":
            raise InvalidSetting("kind", f"`{PARSE_FAILED}` happens when a file is parsed; endpoint must be parse")

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Fault:
        reject_unknown("fault field", obj, {f.name for f in dataclasses.fields(cls)})
        if "kind" not in obj:
            raise InvalidSetting("kind", "is required")
        return cls(**obj)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def refusal(self) -> ConnectError:
        """The error answered instead of the call, for kinds that refuse before any frame."""
        if self.kind == "bad_gateway":
            return BadGateway()
        retry_after = self.retry_after
        if self.kind == "rate_limited" and retry_after is None:
            retry_after = DEFAULT_RATE_LIMIT_RETRY_S
        return _REFUSALS[self.kind].error(self.message, retry_after)

    def block_exception(self) -> tuple[str, str]:
        """The reason and message of the `block.exception`, for the kinds that report one."""
        reason, message = _BLOCK_EXCEPTIONS[self.kind]
        return reason, self.message or message

    def stream_error(self) -> ConnectError:
        """The error sent inside the stream, for the kinds of `_STREAM_ERRORS`."""
        return _STREAM_ERRORS[self.kind].error(self.message)


class FaultBook:
    """The rules, consumed in the order they were added."""

    def __init__(self) -> None:
        self._rules: list[tuple[Fault, int]] = []

    def add(self, fault: Fault) -> None:
        self._rules.append((fault, fault.times))

    def clear(self) -> None:
        self._rules.clear()

    def take(self, endpoint: str, user_id: str | None) -> Fault | None:
        for index, (fault, left) in enumerate(self._rules):
            if fault.endpoint == endpoint and fault.user_id in (None, user_id):
                if left > 1:
                    self._rules[index] = (fault, left - 1)
                else:
                    del self._rules[index]
                return fault
        return None

    def to_json(self) -> list[dict[str, Any]]:
        return [{**fault.to_json(), "times_left": left} for fault, left in self._rules]

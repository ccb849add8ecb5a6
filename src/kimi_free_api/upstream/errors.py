"""Classifying Kimi's failures: by Connect code (or HTTP status) first, then by Kimi's reason string.

2026 captures put G3 reasons (`REASON_INVALID_AUTH_TOKEN`, `REASON_SERVER_OVERLOADED_FOR_FREE_USER` …) in
`details[].debug.reason`; older reason strings (`chat.user_stream_pushing`, `auth.token.invalid` …) have no
documented place. So the whole error — message and details — is searched for them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import orjson

from kimi_free_api.core.errors import (
    AccountBusy,
    ChatNotFound,
    ContentFiltered,
    FreeTierOverloaded,
    GatewayError,
    InvalidRequest,
    QuotaExceeded,
    RateLimited,
    Unauthorized,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from kimi_free_api.redact import redact
from kimi_free_api.upstream.connect import FLAG_TRAILERS

_STATUS_CODES = {
    400: "invalid_argument",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    408: "deadline_exceeded",
    409: "aborted",
    429: "resource_exhausted",
    503: "unavailable",
    504: "deadline_exceeded",
}
_QUOTA_HINTS = ("usage.limit", "limit_reached", "quota", "次数", "上限", "usage limit")


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def classify(
    code: str | None,
    message: str,
    details: Any = None,
    *,
    http_status: int | None = None,
    retry_after: str | None = None,
) -> GatewayError:
    if not code and http_status is not None:
        code = _STATUS_CODES.get(http_status, "internal" if http_status >= 500 else "unknown")
    code = (code or "unknown").lower()
    text = message if details is None else f"{message} {orjson.dumps(details).decode(errors='replace')}"
    lowered = text.lower()
    shown = redact(message.strip()) or code
    wait = _retry_after(retry_after)

    if "server_overloaded_for_free_user" in lowered:
        return FreeTierOverloaded(
            f"Kimi is refusing free accounts right now, on every account of this gateway alike: {shown}",
            retry_after=wait,
        )
    if "user_stream_pushing" in lowered:
        return AccountBusy(
            f"This Kimi account is already answering another request ({shown}).", retry_after=wait or 1.0
        )
    if "auth.token" in lowered or code == "unauthenticated":
        return Unauthorized(f"Kimi rejected the token: {shown}", code="invalid_kimi_token")
    if "chat.forbidden" in lowered or "content_filter" in lowered:
        return ContentFiltered(f"Kimi refused to answer this content: {shown}")
    if "chat.not_found" in lowered or code == "not_found":
        return ChatNotFound(
            f"The Kimi conversation does not exist (deleted, or owned by another account): {shown}",
            param="conversation_id",
        )
    if code == "resource_exhausted" or http_status == 429:
        if any(hint in lowered for hint in _QUOTA_HINTS):
            return QuotaExceeded(f"The Kimi account reached its usage limit: {shown}", retry_after=wait)
        return RateLimited(f"Kimi is rate limiting this account: {shown}", retry_after=wait)
    if code == "permission_denied":
        return Unauthorized(f"Kimi refused this account: {shown}", code="kimi_account_refused")
    if code in ("invalid_argument", "failed_precondition", "out_of_range"):
        return InvalidRequest(f"Kimi rejected the request: {shown}", code="upstream_rejected")
    if code == "unavailable":
        return UpstreamUnavailable(f"Kimi is unavailable: {shown}", retry_after=wait)
    if code == "deadline_exceeded":
        return UpstreamTimeout(f"Kimi timed out: {shown}")
    return UpstreamError(f"Kimi failed: {shown}")


def classify_error_object(error: Any, http_status: int | None = None) -> GatewayError:
    """A Connect error object `{"code", "message", "details"}` (or Kimi's older `{"error_type", "message"}`)."""
    if not isinstance(error, dict):
        return classify(None, str(error), http_status=http_status)
    message = str(error.get("message") or error.get("error_type") or "")
    reason = error.get("error_type") or error.get("reason")
    details = error.get("details") if reason is None else [reason, error.get("details")]
    code = error.get("code")
    return classify(code if isinstance(code, str) else None, message, details, http_status=http_status)


def classify_response(status: int, body: bytes, retry_after: str | None) -> GatewayError:
    """A non-200 answer: a Connect error body when it is JSON, otherwise just the status."""
    try:
        parsed = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        error = parsed.get("error", parsed) if isinstance(parsed.get("error"), dict) else parsed
        result = classify_error_object(error, http_status=status)
    else:
        result = classify(None, f"HTTP {status}", http_status=status)
    header = _retry_after(retry_after)
    if header is not None:
        result.retry_after = header
    return result


# gRPC status numbers, for deployments that end streams with gRPC-web trailers.
GRPC_CODES = {
    "1": "canceled",
    "2": "unknown",
    "3": "invalid_argument",
    "4": "deadline_exceeded",
    "5": "not_found",
    "6": "already_exists",
    "7": "permission_denied",
    "8": "resource_exhausted",
    "9": "failed_precondition",
    "10": "aborted",
    "11": "out_of_range",
    "12": "unimplemented",
    "13": "internal",
    "14": "unavailable",
    "15": "data_loss",
    "16": "unauthenticated",
}


def trailer_error(flags: int, message: bytes) -> GatewayError | None:
    """The end-of-stream envelope: Connect's JSON `{"error"?, "metadata"?}` or gRPC-web's header-style trailer."""
    if flags & FLAG_TRAILERS:
        fields = {
            name.strip().lower(): value.strip()
            for name, _, value in (
                line.partition(":") for line in message.decode(errors="replace").splitlines() if ":" in line
            )
        }
        status = fields.get("grpc-status", "0")
        if status in ("", "0"):
            return None
        text = unquote(fields.get("grpc-message", "")) or f"grpc-status {status}"
        return classify(GRPC_CODES.get(status, "unknown"), text)
    if not message.strip():
        return None
    try:
        trailer = orjson.loads(message)
    except orjson.JSONDecodeError:
        return UpstreamError("Kimi ended the stream with an unreadable trailer")
    error = trailer.get("error") if isinstance(trailer, dict) else None
    return classify_error_object(error) if error else None

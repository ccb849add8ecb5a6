"""Classifying Kimi's failures: Connect code or HTTP status first, then Kimi's reason string."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

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
from kimi_free_api.upstream.errors import classify, classify_error_object, classify_response, trailer_error

from .tokens import mint_jwt


@pytest.mark.parametrize(
    ("code", "cls", "status", "error_code"),
    [
        ("invalid_argument", InvalidRequest, 400, "upstream_rejected"),
        ("failed_precondition", InvalidRequest, 400, "upstream_rejected"),
        ("out_of_range", InvalidRequest, 400, "upstream_rejected"),
        ("unauthenticated", Unauthorized, 401, "invalid_kimi_token"),
        ("permission_denied", Unauthorized, 401, "kimi_account_refused"),
        ("not_found", ChatNotFound, 404, "conversation_not_found"),
        ("resource_exhausted", RateLimited, 429, "rate_limit_exceeded"),
        ("unavailable", UpstreamUnavailable, 503, "service_unavailable"),
        ("deadline_exceeded", UpstreamTimeout, 504, "timeout"),
        ("aborted", UpstreamError, 502, "upstream_error"),
        ("internal", UpstreamError, 502, "upstream_error"),
        ("unknown", UpstreamError, 502, "upstream_error"),
        ("data_loss", UpstreamError, 502, "upstream_error"),
        ("unimplemented", UpstreamError, 502, "upstream_error"),
        ("cancelled", UpstreamError, 502, "upstream_error"),
        ("already_exists", UpstreamError, 502, "upstream_error"),
        ("UNAVAILABLE", UpstreamUnavailable, 503, "service_unavailable"),
        (None, UpstreamError, 502, "upstream_error"),
        ("", UpstreamError, 502, "upstream_error"),
    ],
)
def test_every_connect_code(code: str | None, cls: type[GatewayError], status: int, error_code: str) -> None:
    error = classify(code, "something happened")
    assert type(error) is cls
    assert error.status == status
    assert error.code == error_code
    assert "something happened" in error.message


def test_not_found_points_at_the_conversation() -> None:
    error = classify("not_found", "missing")
    assert error.param == "conversation_id"
    assert error.message == "The Kimi conversation does not exist (deleted, or owned by another account): missing"


@pytest.mark.parametrize(
    ("http_status", "cls", "status"),
    [
        (400, InvalidRequest, 400),
        (401, Unauthorized, 401),
        (403, Unauthorized, 401),
        (404, ChatNotFound, 404),
        (408, UpstreamTimeout, 504),
        (409, UpstreamError, 502),
        (418, UpstreamError, 502),
        (422, UpstreamError, 502),
        (429, RateLimited, 429),
        (500, UpstreamError, 502),
        (502, UpstreamError, 502),
        (503, UpstreamUnavailable, 503),
        (504, UpstreamTimeout, 504),
        (520, UpstreamError, 502),
    ],
)
def test_every_http_status(http_status: int, cls: type[GatewayError], status: int) -> None:
    error = classify(None, f"HTTP {http_status}", http_status=http_status)
    assert type(error) is cls
    assert error.status == status


def test_code_wins_over_http_status() -> None:
    assert type(classify("unavailable", "x", http_status=400)) is UpstreamUnavailable
    assert type(classify("invalid_argument", "x", http_status=503)) is InvalidRequest


def test_http_429_is_rate_limiting_whatever_the_code() -> None:
    assert type(classify("internal", "x", http_status=429)) is RateLimited


@pytest.mark.parametrize(
    ("code", "message", "details", "cls"),
    [
        ("internal", "chat.user_stream_pushing", None, AccountBusy),
        ("failed_precondition", "stream busy", [{"reason": "chat.user_stream_pushing"}], AccountBusy),
        ("resource_exhausted", "x", {"reason": "CHAT.USER_STREAM_PUSHING"}, AccountBusy),
        ("internal", "auth.token.invalid", None, Unauthorized),
        ("permission_denied", "refused", [{"reason": "auth.token.invalid"}], Unauthorized),
        ("resource_exhausted", "auth.token.invalid", None, Unauthorized),
        ("invalid_argument", "chat.forbidden", None, ContentFiltered),
        ("permission_denied", "moderated", {"reason": "chat.forbidden"}, ContentFiltered),
        ("internal", "content_filter triggered", None, ContentFiltered),
        ("failed_precondition", "chat.not_found", None, ChatNotFound),
        ("internal", "gone", ["chat.not_found"], ChatNotFound),
        ("resource_exhausted", "usage limit reached", None, QuotaExceeded),
        ("resource_exhausted", "long text quota used up", None, QuotaExceeded),
        ("resource_exhausted", "x", [{"reason": "usage.limit"}], QuotaExceeded),
        ("resource_exhausted", "x", {"reason": "limit_reached"}, QuotaExceeded),
        ("resource_exhausted", "长文本次数已达上限", None, QuotaExceeded),
        ("resource_exhausted", "too many requests", None, RateLimited),
    ],
)
def test_reasons_in_message_or_details(code: str, message: str, details: Any, cls: type[GatewayError]) -> None:
    assert type(classify(code, message, details)) is cls


def test_account_busy() -> None:
    error = classify("resource_exhausted", "chat.user_stream_pushing")
    assert isinstance(error, AccountBusy)
    assert (error.status, error.code, error.retry_after) == (429, "account_busy", 1.0)
    assert error.message == "This Kimi account is already answering another request (chat.user_stream_pushing)."
    assert classify("resource_exhausted", "chat.user_stream_pushing", retry_after="4").retry_after == 4.0


def test_unauthorized_from_reason() -> None:
    error = classify(None, "auth.token.invalid")
    assert (type(error), error.status, error.code) == (Unauthorized, 401, "invalid_kimi_token")
    assert error.message == "Kimi rejected the token: auth.token.invalid"


def test_content_filtered() -> None:
    error = classify("permission_denied", "blocked", [{"reason": "chat.forbidden"}])
    assert (type(error), error.status, error.code) == (ContentFiltered, 400, "content_filter")


def test_quota_and_rate_limit_take_retry_after_from_the_header() -> None:
    quota = classify("resource_exhausted", "usage limit", retry_after="3600")
    assert (type(quota), quota.code, quota.retry_after) == (QuotaExceeded, "insufficient_quota", 3600.0)
    limited = classify("resource_exhausted", "slow down", retry_after="2.5")
    assert (type(limited), limited.retry_after) == (RateLimited, 2.5)
    assert classify("unavailable", "x", retry_after="9").retry_after == 9.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, None), ("", None), ("soon", None), ("Wed, 21 Oct 2026 07:28:00 GMT", None), ("-3", 0.0), ("0", 0.0)],
)
def test_retry_after_parsing(header: str | None, expected: float | None) -> None:
    assert classify("resource_exhausted", "x", retry_after=header).retry_after == expected


def test_empty_message_shows_the_code() -> None:
    assert classify("unavailable", "   ").message == "Kimi is unavailable: unavailable"
    assert classify(None, "").message == "Kimi failed: unknown"


def test_tokens_in_upstream_messages_are_redacted() -> None:
    token = mint_jwt({"sub": "user-1", "typ": "access", "exp": 2_000_000_000})
    opaque = "sekritsekritsekrit42"
    error = classify("unauthenticated", f"token {token} rejected; Authorization: Bearer {opaque}")
    assert token not in error.message
    assert opaque not in error.message
    assert f"{token[:4]}…{token[-4:]}" in error.message
    # Details are searched for reasons but never shown.
    detailed = classify("internal", "boom", {"token": token, "reason": "chat.not_found"})
    assert type(detailed) is ChatNotFound
    assert token not in detailed.message
    busy = classify("resource_exhausted", f"busy {token}", [{"reason": "chat.user_stream_pushing"}])
    assert type(busy) is AccountBusy
    assert token not in busy.message


# --- classify_error_object ---


def test_error_object_connect_shape() -> None:
    error = classify_error_object({"code": "unauthenticated", "message": "expired"})
    assert type(error) is Unauthorized
    assert error.message == "Kimi rejected the token: expired"


def test_error_object_kimi_error_type_shape() -> None:
    error = classify_error_object({"error_type": "auth.token.invalid", "message": "token invalid"})
    assert type(error) is Unauthorized
    busy = classify_error_object({"error_type": "chat.user_stream_pushing"})
    assert type(busy) is AccountBusy
    assert "chat.user_stream_pushing" in busy.message


def test_error_object_reason_key() -> None:
    assert type(classify_error_object({"reason": "chat.forbidden", "message": "no"})) is ContentFiltered
    error = classify_error_object({"reason": "chat.not_found", "details": [{"x": 1}]})
    assert type(error) is ChatNotFound


def test_error_object_non_string_code_falls_back_to_status() -> None:
    assert type(classify_error_object({"code": -2001, "message": "请求失败"})) is UpstreamError
    assert type(classify_error_object({"code": 16, "message": "x"}, http_status=401)) is Unauthorized


def test_error_object_that_is_not_an_object() -> None:
    error = classify_error_object("boom", http_status=503)
    assert type(error) is UpstreamUnavailable
    assert error.message == "Kimi is unavailable: boom"
    assert type(classify_error_object(None)) is UpstreamError


# --- classify_response ---


def test_response_connect_json_with_retry_after_header() -> None:
    body = orjson.dumps({"code": "resource_exhausted", "message": "slow down"})
    error = classify_response(429, body, "7")
    assert type(error) is RateLimited
    assert error.retry_after == 7.0
    assert error.message == "Kimi is rate limiting this account: slow down"


def test_response_nested_error_object() -> None:
    body = orjson.dumps({"error": {"code": "not_found", "message": "chat.not_found"}})
    error = classify_response(404, body, None)
    assert type(error) is ChatNotFound
    assert error.retry_after is None


def test_response_kimi_json_with_http_200_style_body() -> None:
    body = orjson.dumps({"error_type": "auth.token.invalid", "message": "invalid"})
    assert type(classify_response(400, body, None)) is Unauthorized


@pytest.mark.parametrize(
    ("status", "body", "cls", "message"),
    [
        (502, b"<html>Bad gateway</html>", UpstreamError, "Kimi failed: HTTP 502"),
        (500, b"", UpstreamError, "Kimi failed: HTTP 500"),
        (401, b"", Unauthorized, "Kimi rejected the token: HTTP 401"),
        (503, b"upstream connect error", UpstreamUnavailable, "Kimi is unavailable: HTTP 503"),
        (429, b"[1, 2]", RateLimited, "Kimi is rate limiting this account: HTTP 429"),
        (404, b'"just a string"', ChatNotFound, None),
        (400, b"\xff\xfe not utf-8", InvalidRequest, "Kimi rejected the request: HTTP 400"),
    ],
)
def test_response_non_json_or_non_object_bodies(
    status: int, body: bytes, cls: type[GatewayError], message: str | None
) -> None:
    error = classify_response(status, body, None)
    assert type(error) is cls
    if message is not None:
        assert error.message == message


def test_response_header_retry_after_for_non_json() -> None:
    assert classify_response(503, b"down", "30").retry_after == 30.0
    assert classify_response(503, b"down", "later").retry_after is None


def test_response_redacts_tokens_echoed_by_upstream() -> None:
    token = mint_jwt({"sub": "u", "typ": "refresh"})
    body = orjson.dumps({"code": "unauthenticated", "message": f"bad token {token}"})
    error = classify_response(401, body, None)
    assert type(error) is Unauthorized
    assert token not in error.message


def test_response_account_busy_honours_the_retry_after_header() -> None:
    body = orjson.dumps({"code": "resource_exhausted", "message": "chat.user_stream_pushing"})
    error = classify_response(429, body, "9")
    assert type(error) is AccountBusy
    assert error.retry_after == 9.0


def test_the_2026_unauthenticated_body() -> None:
    """Evidence row 53 (S16): a 401 whose reason sits in details[].debug."""
    body = orjson.dumps(
        {
            "code": "unauthenticated",
            "message": "invalid user token: expired",
            "details": [
                {
                    "type": "common.error.v1.ErrorDetail",
                    "value": "CAES",
                    "debug": {"reason": "REASON_INVALID_AUTH_TOKEN", "localizedMessage": {"locale": "en-US"}},
                }
            ],
        }
    )
    error = classify_response(401, body, None)
    assert isinstance(error, Unauthorized)


def test_free_tier_overload_in_the_trailer_is_service_wide() -> None:
    """user-needs §0.1: resource_exhausted + REASON_SERVER_OVERLOADED_FOR_FREE_USER in an HTTP-200 stream's trailer."""
    trailer = orjson.dumps(
        {
            "error": {
                "code": "resource_exhausted",
                "message": "Too many people are chatting with Kimi right now. Subscribe to enter a priority queue!",
                "details": [
                    {
                        "type": "common.error.v1.ErrorDetail",
                        "debug": {"reason": "REASON_SERVER_OVERLOADED_FOR_FREE_USER"},
                    }
                ],
            }
        }
    )
    error = trailer_error(0x02, trailer)
    assert isinstance(error, FreeTierOverloaded)
    assert (error.status, error.code) == (503, "kimi_overloaded")
    assert "Too many people" in error.message
    # Without the reason, resource_exhausted stays the account's own rate limit.
    plain = trailer_error(0x02, orjson.dumps({"error": {"code": "resource_exhausted", "message": "slow down"}}))
    assert isinstance(plain, RateLimited) and not isinstance(plain, FreeTierOverloaded)

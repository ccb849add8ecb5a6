"""Anthropic's error shape, `{"type": "error", "error": {"type", "message"}, "request_id"}`, and its statuses.

The core's failures map by status: 400 `invalid_request_error`, 401 `authentication_error`, 403 `permission_error`,
404 `not_found_error`, 413 `request_too_large`, 429 `rate_limit_error`, other 5xx `api_error`. Kimi being
unavailable or overloaded (`UpstreamUnavailable`, and any error class or code that says "overload") is Anthropic's
529 `overloaded_error`, which Anthropic clients know to retry later.
"""

from __future__ import annotations

import functools

import orjson
from aiohttp import web

from kimi_free_api.api.errors import Handler, answer_failures, error_response
from kimi_free_api.core.errors import GatewayError, UpstreamUnavailable
from kimi_free_api.redact import redact, request_id_var

OVERLOADED_STATUS = 529
REQUEST_ID = "request-id"
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
}
# What OpenAI-shaped error responses also say about retrying, kept on Anthropic's.
_RETRY_HEADERS = ("Retry-After", "X-Should-Retry")


def _overloaded(exc: GatewayError) -> bool:
    return isinstance(exc, UpstreamUnavailable) or "overload" in f"{type(exc).__name__} {exc.code}".lower()


def status_and_type(exc: GatewayError) -> tuple[int, str]:
    if _overloaded(exc):
        return OVERLOADED_STATUS, "overloaded_error"
    status = exc.status
    return status, _TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_body(exc: GatewayError) -> bytes:
    _, kind = status_and_type(exc)
    error = {"type": kind, "message": redact(exc.message)}
    return orjson.dumps({"type": "error", "error": error, "request_id": request_id_var.get()})


def error_event(exc: GatewayError) -> bytes:
    """A failure after the stream began: Anthropic's `error` event."""
    return b"event: error\ndata: " + error_body(exc) + b"\n\n"


def anthropic_error_response(exc: GatewayError) -> web.Response:
    status, _ = status_and_type(exc)
    retry = error_response(exc).headers
    headers = {name: retry[name] for name in _RETRY_HEADERS if name in retry}
    return web.Response(status=status, body=error_body(exc), content_type="application/json", headers=headers)


def anthropic_errors(handler: Handler) -> Handler:
    """Answers every failure of `handler` in Anthropic's shape (the shared middleware would answer OpenAI's), and
    names the request in Anthropic's `request-id` header, which the SDKs expose."""

    @functools.wraps(handler)
    async def answer(request: web.Request) -> web.StreamResponse:
        response = await answer_failures(request, handler, anthropic_error_response)
        if not response.prepared:
            response.headers[REQUEST_ID] = request_id_var.get()
        return response

    return answer

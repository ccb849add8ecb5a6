"""OpenAI error bodies for every failure, including the ones aiohttp itself raises (unknown route, bad method)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from kimi_free_api.core.errors import GatewayError, InvalidRequest, NotFound
from kimi_free_api.redact import redact, request_id_var

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_object(exc: GatewayError) -> dict[str, object]:
    return {"message": redact(exc.message), "type": exc.type, "param": exc.param, "code": exc.code}


def error_response(exc: GatewayError) -> web.Response:
    headers: dict[str, str] = {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    if not exc.retryable:
        # Tells OpenAI SDKs not to re-send a request that cannot succeed (they retry 409/429/5xx by default).
        headers["X-Should-Retry"] = "false"
    return web.Response(
        status=exc.status,
        body=orjson.dumps({"error": error_object(exc)}),
        content_type="application/json",
        headers=headers,
    )


class _MethodNotAllowed(GatewayError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class PayloadTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class BodyTimeout(GatewayError):
    status = 408
    type = "invalid_request_error"
    code = "request_timeout"


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> GatewayError:
    where = f"{request.method} {request.path}"
    if exc.status == 404:
        return NotFound(f"Unknown route: {where}. The chat endpoint is POST /v1/chat/completions.", code="not_found")
    if exc.status == 405:
        return _MethodNotAllowed(f"Method not allowed: {where}.")
    if exc.status == 413:
        return PayloadTooLarge(f"The request body is too large ({exc.text or 'limit exceeded'}).")
    return InvalidRequest(exc.text or exc.reason, code=f"http_{exc.status}")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id_var.set(request.headers.get("X-Request-Id") or uuid.uuid4().hex[:16])
    if request.method == "OPTIONS":
        return preflight(request)
    started = time.monotonic()
    response = await answer_failures(request, handler, error_response)
    log.info(
        "%s %s -> %d in %.0f ms", request.method, request.path, response.status, (time.monotonic() - started) * 1000
    )
    return response


async def answer_failures(
    request: web.Request, handler: Handler, render: Callable[[GatewayError], web.Response]
) -> web.StreamResponse:
    """`handler`'s response, or any failure of it as the error response `render` makes (the surface's own shape)."""
    try:
        return await handler(request)
    except GatewayError as exc:
        if exc.status >= 500:
            log.warning("%s %s failed: %s", request.method, request.path, exc.message)
        return render(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return render(_from_http_exception(request, exc))
    except web.RequestPayloadError as exc:
        # The body's bytes could not be decoded: a broken gzip/deflate Content-Encoding or chunked framing.
        log.info("%s %s: unreadable body (%s)", request.method, request.path, type(exc.__cause__).__name__)
        return render(
            InvalidRequest(
                "The request body could not be decoded (its Content-Encoding or chunked framing is broken).",
                code="invalid_body",
            )
        )
    except Exception:
        log.exception("unexpected failure in %s %s", request.method, request.path)
        error = GatewayError("The gateway failed unexpectedly; the failure was logged.")
        return render(error)


def preflight(request: web.Request) -> web.Response:
    """CORS preflight for any path: browser clients send one before every cross-origin POST."""
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
            "Access-Control-Allow-Headers": request.headers.get("Access-Control-Request-Headers", "*"),
            "Access-Control-Max-Age": "86400",
        },
    )


async def add_common_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["X-Request-Id"] = request_id_var.get()
    # Browser clients (LobeChat, NextChat web builds) call from their own origin, as the seed allowed.
    response.headers["Access-Control-Allow-Origin"] = request.headers.get("Origin", "*")
    response.headers["Access-Control-Expose-Headers"] = "X-Request-Id, Retry-After"
    response.headers["Vary"] = "Origin"

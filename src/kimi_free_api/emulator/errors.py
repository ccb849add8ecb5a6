"""Connect errors, carrying Kimi's reason strings where Kimi has one.

2026 captures show G3 reasons as `REASON_*` enum names in `details[].debug.reason`, next to a localized message
(`{"code", "message", "details": [{"type": "common.error.v1.ErrorDetail", "value", "debug": {"reason",
"localizedMessage"}}]}`). The emulator's older reason strings (`chat.not_found` …) have no captured home, so they go
in both places a client might look: the message as `"<reason>: <text>"` and
`details: [{"type": "kimi.reason", "value": <reason>}]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

HTTP_STATUS = {
    "invalid_argument": 400,
    "unauthenticated": 401,
    "permission_denied": 403,
    "not_found": 404,
    "resource_exhausted": 429,
    "internal": 500,
    "unavailable": 503,
}
_BAD_GATEWAY_PAGE = (
    "<html><head><title>502 Bad Gateway</title></head><body>"
    "<center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
)


class ConnectError(Exception):
    def __init__(
        self,
        code: str,
        text: str,
        reason: str | None = None,
        *,
        retry_after: int | None = None,
        status: int | None = None,
    ) -> None:
        self.code = code
        self.reason = reason
        self.text = text
        self.message = f"{reason}: {text}" if reason and not _captured(reason) else text
        self.retry_after = retry_after
        self.status = status or HTTP_STATUS[code]
        super().__init__(self.message)

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.reason and _captured(self.reason):
            debug = {"reason": self.reason, "localizedMessage": {"locale": "en-US", "message": self.text}}
            error["details"] = [{"type": "common.error.v1.ErrorDetail", "value": "", "debug": debug}]
        elif self.reason:
            error["details"] = [{"type": "kimi.reason", "value": self.reason}]
        return error

    def _headers(self) -> dict[str, str]:
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}

    def response(self) -> web.Response:
        """The unary (or before-the-stream) form: the HTTP status and the error as the JSON body."""
        return json_response(self.status, self.to_json(), self._headers())

    def legacy_response(self) -> web.Response:
        """The `/api/...` REST form: `{"error_type", "message"}` as in Kimi's older protocol."""
        body = {"error_type": self.reason or self.code, "message": self.message}
        return json_response(self.status, body, self._headers())


def _captured(reason: str) -> bool:
    return reason.startswith("REASON_")


class BadGateway(ConnectError):
    """What a proxy in front of Kimi answers when Kimi is down: a 502 with an HTML page, not JSON."""

    def __init__(self) -> None:
        super().__init__("unavailable", "bad gateway", status=502)

    def response(self) -> web.Response:
        return web.Response(status=502, text=_BAD_GATEWAY_PAGE, content_type="text/html")

    legacy_response = response


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json", headers=headers)


@dataclass(frozen=True)
class Failure:
    """A kind of error with its default wording; `error()` makes one, optionally reworded."""

    code: str
    text: str
    reason: str | None = None

    def error(self, text: str | None = None, retry_after: int | None = None) -> ConnectError:
        return ConnectError(self.code, text or self.text, self.reason, retry_after=retry_after)


# Expired and invalid tokens look the same (captured 2026-10).
UNAUTHENTICATED = Failure("unauthenticated", "invalid user token", "REASON_INVALID_AUTH_TOKEN")
# Peak-hour refusal of free accounts, on every model (2026 notes); it ends an HTTP-200 stream in its trailer.
FREE_TIER_OVERLOADED = Failure(
    "resource_exhausted",
    "Too many people are chatting with Kimi right now. Subscribe to enter a priority queue!",
    "REASON_SERVER_OVERLOADED_FOR_FREE_USER",
)
CHAT_NOT_FOUND = Failure("not_found", "the chat does not exist or belongs to another account", "chat.not_found")
STREAM_BUSY = Failure(
    "resource_exhausted", "another reply is still streaming on this account", "chat.user_stream_pushing"
)


def invalid_argument(text: str) -> ConnectError:
    return ConnectError("invalid_argument", text)

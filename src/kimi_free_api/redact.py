"""Keeping secrets out of logs and error messages.

Kimi tokens are bearer credentials for someone's account: they must never reach a log line, an error body or an
exception message. Everything that formats text for humans goes through here.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time

import orjson

# JWTs (three base64url segments starting with a JSON header) and anything after "Bearer ".
_SECRET_PATTERNS = re.compile(
    r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"
    r"|Bearer\s+[^\s\"']+|(?i:bearer)\s+[^\s\"']{12,}"
)

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def mask_token(token: str) -> str:
    """A recognisable but useless form of a secret: enough to tell two accounts apart in an admin view."""
    if len(token) <= 12:
        return "***"
    return f"{token[:4]}…{token[-4:]}"


def mask_proxy(url: str) -> str:
    """A proxy URL without the password it may carry (`scheme://user:***@host:port`)."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}"


def redact(text: str) -> str:
    return _SECRET_PATTERNS.sub(lambda m: mask_token(m.group(0)), text)


class _RedactingFormatter(logging.Formatter):
    def __init__(self, as_json: bool) -> None:
        super().__init__()
        self._as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        message = redact(record.getMessage())
        if record.exc_info:
            message += "\n" + redact(self.formatException(record.exc_info))
        if self._as_json:
            payload = {
                "ts": round(record.created, 3),
                "level": record.levelname,
                "logger": record.name,
                "request_id": request_id_var.get(),
                "msg": message,
            }
            return orjson.dumps(payload).decode()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        return f"{stamp} {record.levelname:<7} [{request_id_var.get()}] {record.name}: {message}"


def configure_logging(level: str = "INFO", as_json: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RedactingFormatter(as_json))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log would print raw request lines; ours carries the request id instead.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

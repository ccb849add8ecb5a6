"""Who may use the admin surface: a browser session started with ADMIN_KEY, or the key itself as a bearer.

The session cookie is HttpOnly and SameSite=Strict and carries no secret: its issue time, an expiry and a random
nonce, signed with ADMIN_KEY (so it survives restarts and works on every instance, and changing the key ends every
session). Logging out records the nonce in the shared state (`EndedSessions`), and logging out everywhere the time
before which every session is ended, so a cookie stops working on every instance at once, restarts included.
Every change made through a session must also send the session's CSRF token (`X-CSRF-Token`), which the page
gets from the login answer; scripts using `Authorization: Bearer ADMIN_KEY` send no cookie and need none.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

import orjson
from aiohttp import web

from kimi_free_api.api.admin.ports import ADMIN, AdminContext
from kimi_free_api.api.auth import bearer_tokens
from kimi_free_api.api.body import json_body
from kimi_free_api.api.fields import fail
from kimi_free_api.core.errors import GatewayError, NotFound, Unauthorized

COOKIE = "kfa_admin"
# A wrong login is answered this late, so guessing the key through the login costs time.
_WRONG_KEY_DELAY_S = 0.5
CSRF_HEADER = "X-CSRF-Token"


class Forbidden(GatewayError):
    status = 403
    type = "permission_error"
    code = "csrf_token_invalid"


def _now_ms() -> int:
    # Whole milliseconds on both sides of the comparison: a session started after a log-out-everywhere, even
    # within the same second, is issued at or after its mark.
    return int(time.time() * 1000)


def _sign(admin_key: str, purpose: str, value: str) -> str:
    return hmac.new(admin_key.encode(), f"{purpose}|{value}".encode(), hashlib.sha256).hexdigest()


def _csrf(admin: AdminContext, nonce: str) -> str:
    return _sign(admin.admin_key, "csrf", nonce)[:32]


def _context(request: web.Request) -> AdminContext:
    admin = request.app.get(ADMIN)
    if admin is None or not admin.admin_key:
        raise NotFound("The admin API is disabled: set ADMIN_KEY to enable it.", code="admin_disabled")
    return admin


def _is_admin_key(admin: AdminContext, given: str) -> bool:
    return hmac.compare_digest(given.encode(), admin.admin_key.encode())


@dataclass(frozen=True, slots=True)
class _Session:
    nonce: str
    issued_ms: int
    expires_at: int


# issue time (ms) . expiry (s) . nonce . signature; ASCII digits only, so int() never meets other scripts' digits.
_COOKIE_VALUE = re.compile(r"(\d{1,16})\.(\d{1,12})\.([\w-]{1,64})\.([0-9a-f]{64})", re.ASCII)


def _signed_session(request: web.Request, admin: AdminContext) -> _Session | None:
    """The unexpired session a cookie signed with ADMIN_KEY names, else None."""
    match = _COOKIE_VALUE.fullmatch(request.cookies.get(COOKIE, ""))
    if match is None:
        return None
    issued, expires, nonce, signature = match.groups()
    if not hmac.compare_digest(signature, _sign(admin.admin_key, "session", f"{issued}.{expires}.{nonce}")):
        return None
    if int(expires) < time.time():
        return None
    return _Session(nonce, int(issued), int(expires))


def _remember_ended(admin: AdminContext, ended: _Session) -> None:
    now = time.time()
    for nonce, until in list(admin.ended_sessions.items()):
        if until < now:
            del admin.ended_sessions[nonce]
    admin.ended_sessions[ended.nonce] = ended.expires_at


async def _live_session(request: web.Request, admin: AdminContext) -> _Session | None:
    """The cookie's session unless it was ended, here or on another instance."""
    signed = _signed_session(request, admin)
    if signed is None or signed.nonce in admin.ended_sessions:
        return None
    if await admin.ended.session_ended(signed.nonce, signed.issued_ms):
        _remember_ended(admin, signed)
        return None
    return signed


async def _admitted(request: web.Request, *, changing: bool) -> tuple[AdminContext, _Session | None]:
    """The admin context and the session it came with (None for the bearer), or the refusal."""
    admin = _context(request)
    given = bearer_tokens(request)
    if given:
        if len(given) == 1 and _is_admin_key(admin, given[0]):
            return admin, None
        raise Unauthorized("Wrong admin key.", code="invalid_admin_key")
    current = await _live_session(request, admin)
    if current is None:
        raise Unauthorized(
            "Log in at /admin, or send ADMIN_KEY in the `Authorization: Bearer` header.", code="admin_login_required"
        )
    if changing and not hmac.compare_digest(request.headers.get(CSRF_HEADER, ""), _csrf(admin, current.nonce)):
        raise Forbidden(f"Changes made through an admin session need its CSRF token in the {CSRF_HEADER} header.")
    return admin, current


async def require_admin(request: web.Request, *, changing: bool = False) -> AdminContext:
    """The admin context if the request may read (or, `changing`, change) through the admin API."""
    admin, _ = await _admitted(request, changing=changing)
    return admin


def _session_body(admin: AdminContext, nonce: str, expires: int) -> web.Response:
    return web.Response(
        body=orjson.dumps({"csrf_token": _csrf(admin, nonce), "expires_at": expires}),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


async def login(request: web.Request) -> web.Response:
    admin = _context(request)
    body = await json_body(request)
    key = body.get("key") if isinstance(body, dict) else None
    if not isinstance(key, str) or not _is_admin_key(admin, key.strip()):
        await asyncio.sleep(_WRONG_KEY_DELAY_S)
        raise Unauthorized("Wrong admin key.", code="invalid_admin_key")
    issued_ms = _now_ms()
    expires = int(issued_ms / 1000 + admin.session_ttl_s)
    nonce = secrets.token_urlsafe(18)
    value = f"{issued_ms}.{expires}.{nonce}"
    response = _session_body(admin, nonce, expires)
    response.set_cookie(
        COOKIE,
        f"{value}.{_sign(admin.admin_key, 'session', value)}",
        max_age=int(admin.session_ttl_s),
        path="/admin",
        httponly=True,
        samesite="Strict",
        secure=request.secure or request.headers.get("X-Forwarded-Proto", "") == "https",
    )
    return response


async def session(request: web.Request) -> web.Response:
    admin = _context(request)
    current = await _live_session(request, admin)
    if current is None:
        raise Unauthorized("Not logged in.", code="admin_login_required")
    return _session_body(admin, current.nonce, current.expires_at)


def _everywhere(request: web.Request) -> bool:
    value = request.query.get("everywhere", "false")
    if value not in ("true", "false"):
        raise fail("`everywhere` must be true or false.", "everywhere")
    return value == "true"


async def logout(request: web.Request) -> web.Response:
    """Ends this session on every instance; with `?everywhere=true`, every session issued until now (the bearer
    may ask for that too: a stolen cookie can be ended without it)."""
    admin, current = await _admitted(request, changing=True)
    if _everywhere(request):
        await admin.ended.end_sessions_before(_now_ms())
    elif current is not None:
        await admin.ended.end_session(current.nonce, current.expires_at)
    if current is not None:
        _remember_ended(admin, current)
    response = web.Response(body=b'{"logged_out":true}', content_type="application/json")
    response.del_cookie(COOKIE, path="/admin")
    return response

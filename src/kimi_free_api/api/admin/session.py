"""Who may use the admin surface: a browser session started with ADMIN_KEY, or the key itself as a bearer.

The session cookie is HttpOnly and SameSite=Strict and carries no secret: an expiry and a random nonce, signed
with ADMIN_KEY (so it survives restarts and works on every instance, and changing the key ends every session).
Every change made through a session must also send the session's CSRF token (`X-CSRF-Token`), which the page
gets from the login answer; scripts using `Authorization: Bearer ADMIN_KEY` send no cookie and need none.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time

import orjson
from aiohttp import web

from kimi_free_api.api.admin.ports import ADMIN, AdminContext
from kimi_free_api.api.auth import bearer_tokens
from kimi_free_api.api.body import json_body
from kimi_free_api.core.errors import GatewayError, NotFound, Unauthorized

COOKIE = "kfa_admin"
# A wrong login is answered this late, so guessing the key through the login costs time.
_WRONG_KEY_DELAY_S = 0.5
CSRF_HEADER = "X-CSRF-Token"


class Forbidden(GatewayError):
    status = 403
    type = "permission_error"
    code = "csrf_token_invalid"


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


def _session_nonce(request: web.Request, admin: AdminContext) -> str | None:
    """The nonce of a valid session cookie, else None."""
    expires, _, rest = request.cookies.get(COOKIE, "").partition(".")
    nonce, _, signature = rest.partition(".")
    if not expires.isdigit() or not nonce or not signature:
        return None
    if not hmac.compare_digest(signature, _sign(admin.admin_key, "session", f"{expires}.{nonce}")):
        return None
    if int(expires) < time.time() or nonce in admin.ended_sessions:
        return None
    return nonce


def require_admin(request: web.Request, *, changing: bool = False) -> AdminContext:
    """The admin context if the request may read (or, `changing`, change) through the admin API."""
    admin = _context(request)
    given = bearer_tokens(request)
    if given:
        if len(given) == 1 and _is_admin_key(admin, given[0]):
            return admin
        raise Unauthorized("Wrong admin key.", code="invalid_admin_key")
    nonce = _session_nonce(request, admin)
    if nonce is None:
        raise Unauthorized(
            "Log in at /admin, or send ADMIN_KEY in the `Authorization: Bearer` header.", code="admin_login_required"
        )
    if changing and not hmac.compare_digest(request.headers.get(CSRF_HEADER, ""), _csrf(admin, nonce)):
        raise Forbidden(f"Changes made through an admin session need its CSRF token in the {CSRF_HEADER} header.")
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
    expires = int(time.time() + admin.session_ttl_s)
    nonce = secrets.token_urlsafe(18)
    value = f"{expires}.{nonce}"
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
    nonce = _session_nonce(request, admin)
    if nonce is None:
        raise Unauthorized("Not logged in.", code="admin_login_required")
    expires = int(request.cookies[COOKIE].partition(".")[0])
    return _session_body(admin, nonce, expires)


async def logout(request: web.Request) -> web.Response:
    admin = require_admin(request, changing=True)
    nonce = _session_nonce(request, admin)
    now = time.time()
    for ended, until in list(admin.ended_sessions.items()):
        if until < now:
            del admin.ended_sessions[ended]
    if nonce is not None:
        admin.ended_sessions[nonce] = now + admin.session_ttl_s
    response = web.Response(body=b'{"logged_out":true}', content_type="application/json")
    response.del_cookie(COOKIE, path="/admin")
    return response

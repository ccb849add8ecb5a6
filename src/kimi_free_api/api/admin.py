"""GET /admin/accounts: every account's health, for operators (admin key required)."""

from __future__ import annotations

import asyncio
import hmac

import orjson
from aiohttp import web

from kimi_free_api.api.auth import bearer_tokens
from kimi_free_api.api.context import ACCESS, POOL
from kimi_free_api.core.errors import NotFound, Unauthorized


def _require_admin(request: web.Request) -> None:
    admin_key = request.app[ACCESS].admin_key
    if not admin_key:
        raise NotFound("The admin API is disabled: set ADMIN_KEY to enable it.", code="admin_disabled")
    given = bearer_tokens(request)
    if len(given) != 1 or not hmac.compare_digest(given[0].encode(), admin_key.encode()):
        raise Unauthorized(
            "The admin API needs ADMIN_KEY in the `Authorization: Bearer` header.", code="invalid_admin_key"
        )


async def list_accounts(request: web.Request) -> web.Response:
    _require_admin(request)
    now = asyncio.get_running_loop().time()
    accounts = [account.describe(now) for account in request.app[POOL].accounts()]
    return web.Response(body=orjson.dumps({"object": "list", "data": accounts}), content_type="application/json")

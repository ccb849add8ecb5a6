"""The seed's small endpoints: GET /ping, GET /, POST /token/check; plus GET /healthz for orchestrators."""

from __future__ import annotations

from importlib import resources

import orjson
from aiohttp import web

from kimi_free_api.api.auth import credentials, token_shaped
from kimi_free_api.api.body import SMALL_BODY_BYTES, json_body
from kimi_free_api.api.context import ACCESS, UPSTREAM
from kimi_free_api.core.errors import InvalidRequest


async def ping(_: web.Request) -> web.Response:
    return web.Response(text="pong")


async def healthz(_: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type="application/json")


async def welcome(_: web.Request) -> web.Response:
    page = resources.files("kimi_free_api.api").joinpath("static/welcome.html").read_bytes()
    return web.Response(body=page, content_type="text/html", headers={"Cache-Control": "no-cache"})


async def token_check(request: web.Request) -> web.Response:
    """Open in seed mode, as the original was; with the server's own accounts only for its API keys, so that it is
    no oracle for anyone who can reach the port."""
    if not request.app[ACCESS].client_tokens:
        await credentials(request)
    body = await json_body(request, SMALL_BODY_BYTES)
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token.strip():
        raise InvalidRequest("`token` must be a non-empty string.", param="token", code="invalid_type")
    if not token_shaped(token.strip()):
        # It could only reach Kimi inside a header, where control characters are refused (and would be injected).
        raise InvalidRequest(
            "`token` holds characters no Kimi token has (only printable ASCII).", param="token", code="invalid_value"
        )
    live = await request.app[UPSTREAM].check_token(token.strip())
    return web.Response(body=orjson.dumps({"live": live}), content_type="application/json")

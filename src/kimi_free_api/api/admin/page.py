"""The console page and its two static files, served from the package (no CDN, nothing built at run time)."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

_TYPES = {"admin.js": "text/javascript", "admin.css": "text/css"}
# The page loads only its own files and talks only to its own origin; nobody may frame it.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _read(name: str) -> bytes:
    return resources.files("kimi_free_api.api.admin").joinpath(f"static/{name}").read_bytes()


async def console(_: web.Request) -> web.Response:
    return web.Response(body=_read("admin.html"), content_type="text/html", charset="utf-8", headers=_HEADERS)


async def static_file(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in _TYPES:
        raise web.HTTPNotFound()
    return web.Response(body=_read(name), content_type=_TYPES[name], charset="utf-8", headers=_HEADERS)

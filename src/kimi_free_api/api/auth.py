"""The seed's credential convention: `Authorization: Bearer TOKEN1,TOKEN2` carries one or more Kimi tokens."""

from __future__ import annotations

from aiohttp import web


def bearer_tokens(request: web.Request) -> tuple[str, ...]:
    header = request.headers.get("Authorization", "").strip()
    if header[:7].lower() == "bearer ":
        header = header[7:]
    return tuple(token for token in (part.strip() for part in header.split(",")) if token)

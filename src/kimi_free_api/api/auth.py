"""Who is calling, and with which Kimi accounts.

Two modes share one scheduler. Seed mode: `Authorization: Bearer TOKEN1,TOKEN2` carries the client's own Kimi
tokens. Server mode: the bearer is a gateway API key and the server's own accounts answer. The two can never be
confused: a bearer that is a known API key is never sent to Kimi, one shaped like a gateway key (`kfa-…`) but
unknown is refused, and API keys may not look like Kimi tokens (checked at start-up).
"""

from __future__ import annotations

from aiohttp import web

from kimi_free_api.api.context import ACCESS
from kimi_free_api.api.metering import admit
from kimi_free_api.core.errors import Unauthorized

KEY_PREFIX = "kfa-"


def bearer_tokens(request: web.Request) -> tuple[str, ...]:
    header = request.headers.get("Authorization", "").strip()
    if header[:7].lower() == "bearer ":
        header = header[7:]
    return tuple(token for token in (part.strip() for part in header.split(",")) if token)


async def credentials(request: web.Request) -> tuple[str, ...]:
    """The client's Kimi tokens, or () for "use the server's accounts" after a valid API key."""
    access = request.app[ACCESS]
    tokens = bearer_tokens(request)
    caller = await access.keys.identify(tokens[0]) if len(tokens) == 1 and not tokens[0].startswith("eyJ") else None
    if caller is not None:
        await admit(request, caller)
        return ()
    if any(token.startswith(KEY_PREFIX) for token in tokens):
        raise Unauthorized("Invalid API key.", code="invalid_api_key")
    if not access.client_tokens:
        raise Unauthorized(
            "This gateway answers with its own Kimi accounts: authenticate with one of its API keys.",
            code="invalid_api_key",
        )
    if not tokens:
        raise Unauthorized(
            "No credentials: put your Kimi refresh or access token (or a gateway API key) in the "
            "`Authorization: Bearer` header.",
            code="missing_api_key",
        )
    return tokens

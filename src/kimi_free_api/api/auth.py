"""Who is calling, and with which Kimi accounts.

Two modes share one scheduler. Seed mode: `Authorization: Bearer TOKEN1,TOKEN2` carries the client's own Kimi
tokens. Server mode: the bearer is a gateway API key and the server's own accounts answer. The two can never be
confused: a bearer that is a known API key is never sent to Kimi, one shaped like a gateway key (`kfa-…`) but
unknown is refused, and API keys may not look like Kimi tokens (checked at start-up).
"""

from __future__ import annotations

import re

from aiohttp import web

from kimi_free_api.api.context import ACCESS
from kimi_free_api.api.metering import admit
from kimi_free_api.core.errors import InvalidRequest, Unauthorized
from kimi_free_api.core.owners import SEED, key_owner

KEY_PREFIX = "kfa-"
# Each client-sent token becomes an account the pool tracks: a request may not bring an unbounded number.
MAX_TOKENS_PER_REQUEST = 32
# Kimi's tokens (JWTs) and the gateway's keys are printable ASCII; anything else cannot be either. aiohttp hands
# header bytes that are not UTF-8 over as lone surrogates, which this refuses too.
_TOKEN = re.compile(r"[\x21-\x7e]+")


def token_shaped(token: str) -> bool:
    return _TOKEN.fullmatch(token) is not None


def bearer_tokens(request: web.Request) -> tuple[str, ...]:
    # Anthropic clients (Claude Code with ANTHROPIC_API_KEY) send the key as `x-api-key` instead.
    header = request.headers.get("Authorization", "").strip() or request.headers.get("x-api-key", "").strip()
    if header[:7].lower() == "bearer ":
        header = header[7:]
    tokens = tuple(token for token in (part.strip() for part in header.split(",")) if token)
    if len(tokens) > MAX_TOKENS_PER_REQUEST:
        raise InvalidRequest(
            f"The Authorization header carries {len(tokens)} tokens; at most {MAX_TOKENS_PER_REQUEST} are accepted.",
            code="too_many_tokens",
        )
    if not all(map(token_shaped, tokens)):
        raise Unauthorized(
            "The bearer credential holds characters no Kimi token or API key has (only printable ASCII).",
            code="invalid_api_key",
        )
    return tokens


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


async def caller(request: web.Request) -> tuple[tuple[str, ...], str]:
    """`credentials`, and who owns what the client keeps here (core/owners.py): its API key, or its own tokens."""
    tokens = await credentials(request)
    return tokens, SEED if tokens else key_owner(bearer_tokens(request)[0])

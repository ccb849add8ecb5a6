"""From what a client sends (a refresh token, or an access JWT) to an access token Kimi accepts.

Refresh tokens are exchanged at the refresh endpoint; the access token is cached until shortly before it expires,
and concurrent requests needing the same exchange share one upstream call. A refresh token the upstream rotates is
remembered and used for the next exchange.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from kimi_free_api.config import Settings
from kimi_free_api.core.credentials import credential_id
from kimi_free_api.core.errors import GatewayError, Unauthorized, UpstreamError, UpstreamTimeout
from kimi_free_api.core.ports import CachedAccess, TokenCache
from kimi_free_api.upstream import jwt
from kimi_free_api.upstream.errors import classify_response
from kimi_free_api.upstream.headers import browser_headers, identity_headers


@dataclass(slots=True)
class Access:
    token: str
    headers: dict[str, str]
    expires_at: float
    # False when the client sent an access token itself: nothing to refresh when Kimi rejects it.
    refreshable: bool
    claims: dict[str, Any] = field(default_factory=dict)


def _pick(data: dict[str, Any], *names: str) -> str:
    for name in names:
        value = data.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


class TokenResolver:
    def __init__(
        self,
        session_for: Callable[[str], aiohttp.ClientSession],
        settings: Settings,
        store: TokenCache | None = None,
    ) -> None:
        """`session_for(token)`: the session a client token's calls go out on (its account's proxy)."""
        self._session_for = session_for
        self._settings = settings
        self._store = store
        self._origin = settings.kimi_base_url.rstrip("/")
        self._cache: dict[str, Access] = {}
        self._rotated: dict[str, str] = {}
        self._inflight: dict[str, asyncio.Task[Access]] = {}
        self.refresh_calls = 0

    def _access_for(self, token: str, payload: dict[str, Any], refreshable: bool, ttl_fallback: float) -> Access:
        headers = browser_headers(self._origin, self._settings.kimi_language, self._settings.kimi_timezone)
        headers.update(identity_headers(payload))
        headers["Authorization"] = f"Bearer {token}"
        expires = jwt.expiry(payload) or time.time() + ttl_fallback
        return Access(token, headers, expires, refreshable, payload)

    async def access(self, token: str, margin_s: float = 0.0) -> Access:
        cached = self._cache.get(token)
        margin = max(margin_s, self._settings.token_refresh_margin_s)
        if cached is not None and (time.time() < cached.expires_at - margin or not cached.refreshable):
            return cached
        payload = jwt.claims(token)
        if jwt.is_access_token(payload):
            access = self._access_for(
                token, payload, refreshable=False, ttl_fallback=self._settings.token_default_ttl_s
            )
            self._cache[token] = access
            return access
        task = self._inflight.get(token)
        if task is None:
            task = asyncio.create_task(self._obtain(token, margin))
            self._inflight[token] = task
            task.add_done_callback(lambda _: self._inflight.pop(token, None))
        # Shielded: one caller going away must not cancel the exchange the others are waiting on.
        return await asyncio.shield(task)

    def invalidate(self, token: str) -> None:
        self._cache.pop(token, None)

    async def check(self, token: str) -> bool:
        """Whether Kimi accepts this refresh token now (always a fresh exchange, never the cache)."""
        self.invalidate(token)
        try:
            await self._exchange(token)
        except GatewayError:
            return False
        return True

    async def _obtain(self, token: str, margin: float) -> Access:
        """An access token from the shared cache (a restart, another instance) or, failing that, an exchange."""
        if self._store is not None:
            stored = await self._store.load(credential_id(token))
            if stored is not None:
                if stored.refresh_token:
                    self._rotated[token] = stored.refresh_token
                if time.time() < stored.expires_at - margin:
                    access = self._access_for(
                        stored.access_token, jwt.claims(stored.access_token), refreshable=True, ttl_fallback=0
                    )
                    access.expires_at = stored.expires_at
                    self._cache[token] = access
                    return access
        return await self._exchange(token)

    async def _exchange(self, client_token: str) -> Access:
        refresh_token = self._rotated.get(client_token, client_token)
        data = await self._call_refresh(self._session_for(client_token), refresh_token)
        access_token = _pick(data, "access_token", "accessToken", "token")
        if not access_token:
            raise UpstreamError("Kimi's refresh endpoint answered without an access token")
        rotated = _pick(data, "refresh_token", "refreshToken")
        if rotated and rotated != refresh_token:
            self._rotated[client_token] = rotated
        expires_in = data.get("expires_in") or data.get("expiresIn")
        ttl = float(expires_in) if isinstance(expires_in, int | float) else self._settings.token_default_ttl_s
        access = self._access_for(access_token, jwt.claims(access_token), refreshable=True, ttl_fallback=ttl)
        self._cache[client_token] = access
        if self._store is not None:
            entry = CachedAccess(access_token, access.expires_at, self._rotated.get(client_token, ""))
            await self._store.save(credential_id(client_token), entry)
        return access

    async def _call_refresh(self, session: aiohttp.ClientSession, refresh_token: str) -> dict[str, Any]:
        self.refresh_calls += 1
        headers = browser_headers(self._origin, self._settings.kimi_language, self._settings.kimi_timezone)
        headers.update(identity_headers(jwt.claims(refresh_token)))
        timeout = aiohttp.ClientTimeout(total=self._settings.connect_timeout_s)
        if self._settings.kimi_refresh_style == "connect":
            headers["Content-Type"] = "application/json"
            headers["Connect-Protocol-Version"] = "1"
            request = session.post(
                self._settings.refresh_url,
                data=orjson.dumps({"refresh_token": refresh_token}),
                headers=headers,
                timeout=timeout,
            )
        else:
            headers["Authorization"] = f"Bearer {refresh_token}"
            request = session.get(self._settings.refresh_url, headers=headers, timeout=timeout)
        try:
            async with request as response:
                body = await response.read()
                if response.status != 200:
                    raise classify_response(response.status, body, response.headers.get("Retry-After"))
        except TimeoutError as exc:
            raise UpstreamTimeout("Kimi's token refresh timed out") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"Could not reach Kimi to refresh the token: {type(exc).__name__}") from exc
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError("Kimi's refresh endpoint answered with something other than JSON") from exc
        if not isinstance(data, dict):
            raise UpstreamError("Kimi's refresh endpoint answered with an unexpected shape")
        if data.get("error_type") or data.get("code") == "unauthenticated":
            raise Unauthorized("Kimi rejected the refresh token", code="invalid_kimi_token")
        return data

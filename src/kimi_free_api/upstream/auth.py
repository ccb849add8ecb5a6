"""From what a client sends (a refresh token, or an access JWT) to an access token Kimi accepts.

Refresh tokens are exchanged at the refresh endpoint; the access token is cached until shortly before it expires,
and concurrent requests needing the same exchange share one upstream call. A refresh token the upstream rotates is
remembered and used for the next exchange.

The default exchange is the web app's own (`POST {auth host}/api/account.gateway.v1.AuthService/RefreshToken`,
body `{"refresh_token"}`, no Authorization, answer `{accessToken, refreshToken}`); where that endpoint answers
404/405/415 the legacy `GET {base}/api/auth/token/refresh` takes over for the rest of the process.
"""

from __future__ import annotations

import asyncio
import logging
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
from kimi_free_api.upstream.proxies import unreachable, unreachable_reason

log = logging.getLogger(__name__)
# What a host answers for a call it does not serve (no route, wrong method, or a body it does not take).
_NOT_SERVED = frozenset({404, 405, 415})
# Refresh tokens rotate on every exchange: another holder of the same login refreshing first leaves ours revoked.
_REFRESH_REJECTED = (
    "Kimi rejected the refresh token: it expired, or another holder of the same login (a browser, another tool) "
    "refreshed it first, which revokes this copy. Log in again and give the gateway a login of its own."
)


@dataclass(slots=True)
class Access:
    token: str
    headers: dict[str, str]
    expires_at: float
    # False when the client sent an access token itself: nothing to refresh when Kimi rejects it.
    refreshable: bool
    claims: dict[str, Any] = field(default_factory=dict)
    # When this process got it (time.monotonic()).
    obtained_at: float = field(default_factory=time.monotonic)


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
        # Access tokens Kimi rejected, by client token: the shared cache may still hold them and must not be believed.
        self._rejected: dict[str, str] = {}
        self._style = settings.kimi_refresh_style
        self.refresh_calls = 0

    def _headers(self) -> dict[str, str]:
        settings = self._settings
        return browser_headers(self._origin, settings.kimi_language, settings.kimi_timezone, settings.kimi_msh_version)

    def _access_for(self, token: str, payload: dict[str, Any], refreshable: bool, ttl_fallback: float) -> Access:
        headers = self._headers()
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
            task.add_done_callback(lambda done: self._forget_task(token, done))
        # Shielded: one caller going away must not cancel the exchange the others are waiting on.
        return await asyncio.shield(task)

    def _forget_task(self, token: str, task: asyncio.Task[Access]) -> None:
        if self._inflight.get(token) is task:
            del self._inflight[token]

    def invalidate(self, token: str, rejected: str = "") -> None:
        """Forget the access token of `token`; Kimi rejected it, so neither this cache nor the shared one holds it.

        `rejected`: the access token Kimi refused; a newer one, got meanwhile by another request, is kept. An
        exchange still finishing (saving what it got) would hand back the same token: the next caller starts
        another instead of joining it."""
        cached = self._cache.get(token)
        if cached is not None and rejected and cached.token != rejected:
            return
        dropped = self._cache.pop(token, None)
        if dropped is not None:
            self._rejected[token] = dropped.token
            self._inflight.pop(token, None)

    async def renew(self, token: str, rejected_since: float) -> bool:
        """A fresh exchange after Kimi rejected the access token mid-stream; False when there is none to make, or
        when the access token was exchanged after `rejected_since` (monotonic): a brand-new one rejected means the
        refresh token's session itself is gone."""
        cached = self._cache.get(token)
        if jwt.is_access_token(jwt.claims(token)) or (cached is not None and cached.obtained_at >= rejected_since):
            return False
        self.invalidate(token)
        await self.access(token)
        return True

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
                fresh = time.time() < stored.expires_at - margin
                if fresh and stored.access_token != self._rejected.get(token):
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
        self._rejected.pop(client_token, None)
        if self._store is not None:
            entry = CachedAccess(access_token, access.expires_at, self._rotated.get(client_token, ""))
            await self._store.save(credential_id(client_token), entry)
        return access

    async def _call_refresh(self, session: aiohttp.ClientSession, refresh_token: str) -> dict[str, Any]:
        if self._style == "connect":
            status, body = await self._send_refresh(session, refresh_token, "connect", self._settings.refresh_url)
            if status not in _NOT_SERVED:
                return _refresh_answer(status, body)
            log.info("the Connect RefreshToken call answered %d; using the legacy refresh call from now on", status)
            self._style = "rest"
        settings = self._settings
        legacy = settings.refresh_url if settings.kimi_refresh_style == "rest" else settings.legacy_refresh_url
        return _refresh_answer(*await self._send_refresh(session, refresh_token, "rest", legacy))

    async def _send_refresh(
        self, session: aiohttp.ClientSession, refresh_token: str, style: str, url: str
    ) -> tuple[int, bytes]:
        self.refresh_calls += 1
        headers = self._headers()
        headers.update(identity_headers(jwt.claims(refresh_token)))
        timeout = aiohttp.ClientTimeout(total=self._settings.connect_timeout_s)
        if style == "connect":
            headers["Content-Type"] = "application/json"
            headers["Connect-Protocol-Version"] = "1"
            body = orjson.dumps({"refresh_token": refresh_token})
            request = session.post(url, data=body, headers=headers, timeout=timeout)
        else:
            headers["Authorization"] = f"Bearer {refresh_token}"
            request = session.get(url, headers=headers, timeout=timeout)
        try:
            async with request as response:
                answer = await response.read()
                if response.status == 401:
                    raise Unauthorized(_REFRESH_REJECTED, code="invalid_kimi_token")
                if response.status != 200 and response.status not in _NOT_SERVED:
                    raise classify_response(response.status, answer, response.headers.get("Retry-After"))
                return response.status, answer
        except TimeoutError as exc:
            raise UpstreamTimeout("Kimi's token refresh timed out") from exc
        except unreachable() as exc:
            raise UpstreamError(f"Could not reach Kimi to refresh the token: {unreachable_reason(exc)}") from exc


def _refresh_answer(status: int, body: bytes) -> dict[str, Any]:
    if status != 200:
        # Not a missing chat: the refresh endpoint itself is not where the settings say.
        raise UpstreamError(f"Kimi's refresh endpoint answered HTTP {status}; check KIMI_REFRESH_STYLE/_URL")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise UpstreamError("Kimi's refresh endpoint answered with something other than JSON") from exc
    if not isinstance(data, dict):
        raise UpstreamError("Kimi's refresh endpoint answered with an unexpected shape")
    if data.get("error_type") or data.get("code") == "unauthenticated":
        raise Unauthorized(_REFRESH_REJECTED, code="invalid_kimi_token")
    return data

"""An admin console session as a browser holds it: the HttpOnly cookie in a jar, the CSRF token from the login."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

ADMIN_KEY = "admin-key-for-tests-0123"


class AdminSession:
    def __init__(self, http: aiohttp.ClientSession, csrf: str) -> None:
        self.http = http
        self.csrf = csrf

    async def call(self, method: str, path: str, body: Any = None, *, csrf: bool = True) -> tuple[int, Any]:
        headers = {"X-CSRF-Token": self.csrf} if csrf and method != "GET" else {}
        async with self.http.request(method, "/admin/api" + path, json=body, headers=headers) as response:
            return response.status, await response.json()

    async def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, data = await self.call(method, path, body)
        assert status in (200, 201), data
        return data


@asynccontextmanager
async def admin_session(url: str, key: str = ADMIN_KEY) -> AsyncIterator[AdminSession]:
    # unsafe=True: the jar keeps cookies of an IP-address host (127.0.0.1), as a browser does.
    async with aiohttp.ClientSession(base_url=url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post("/admin/api/login", json={"key": key}) as response:
            assert response.status == 200, await response.text()
            csrf = (await response.json())["csrf_token"]
        yield AdminSession(http, csrf)

"""The seed's small endpoints and cross-origin access."""

from __future__ import annotations

import aiohttp


async def test_ping_welcome_healthz(http: aiohttp.ClientSession) -> None:
    async with http.get("/ping") as response:
        assert await response.text() == "pong"
    async with http.get("/") as response:
        assert response.status == 200
        assert "kimi-free-api" in await response.text()
    async with http.get("/healthz") as response:
        assert await response.json() == {"status": "ok"}


async def test_cors_preflight_and_request_id(http: aiohttp.ClientSession) -> None:
    headers = {
        "Origin": "http://localhost:3210",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os",
    }
    async with http.options("/v1/chat/completions", headers=headers) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:3210"
        assert "x-stainless-os" in response.headers["Access-Control-Allow-Headers"]
    async with http.get("/ping", headers={"X-Request-Id": "abc123"}) as response:
        assert response.headers["X-Request-Id"] == "abc123"

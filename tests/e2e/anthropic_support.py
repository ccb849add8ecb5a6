"""Helpers for the Anthropic Messages API tests: the real `anthropic` client, raw SSE reading, sent prompts."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
from anthropic import AsyncAnthropic
from multidict import CIMultiDictProxy

from kimi_free_api.emulator import Emulator
from tests.e2e.support import Gateway

VERSION = {"anthropic-version": "2023-06-01"}


def anthropic_client(gateway: Gateway, api_key: str | None = None, auth_token: str | None = None) -> AsyncAnthropic:
    """`api_key` travels as `x-api-key`, `auth_token` as `Authorization: Bearer`."""
    return AsyncAnthropic(base_url=gateway.url, api_key=api_key, auth_token=auth_token, max_retries=0, timeout=30)


def sent_prompts(emulator: Emulator) -> list[str]:
    return [body["message"]["blocks"][0]["text"]["content"] for body in emulator.state.chat_requests]


def parse_sse(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) pairs of an SSE body; each data repeats its name as `type`."""
    events: list[tuple[str, dict[str, Any]]] = []
    for chunk in raw.decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in chunk.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in lines:
            data = orjson.loads(lines["data"])
            assert data["type"] == lines["event"], chunk
            events.append((lines["event"], data))
    return events


async def post_messages(
    gateway: Gateway, body: dict[str, Any], headers: dict[str, str], path: str = "/v1/messages"
) -> tuple[int, bytes, CIMultiDictProxy[str]]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http,
        http.post(gateway.url + path, data=orjson.dumps(body), headers={**VERSION, **headers}) as response,
    ):
        return response.status, await response.read(), response.headers

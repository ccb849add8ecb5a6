"""Coalescing: frames that arrive faster than the relay window share a write; slower ones are never held back."""

from __future__ import annotations

import statistics
import time
from itertools import pairwise

import aiohttp
import orjson

from kimi_free_api.emulator import Account, Emulator
from kimi_free_api.emulator.answers import expected_answer
from tests.e2e.support import GatewayFactory

WINDOW_MS = 50.0


async def _stream(url: str, account: Account, prompt: str) -> tuple[str, list[float]]:
    """The streamed text, and when each HTTP chunk (one write by the gateway) arrived."""
    body = {"model": "kimi", "messages": [{"role": "user", "content": prompt}], "stream": True}
    headers = {"Authorization": f"Bearer {account.refresh_token}"}
    arrivals: list[float] = []
    raw = b""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http,
        http.post(f"{url}/v1/chat/completions", json=body, headers=headers) as response,
    ):
        assert response.status == 200
        async for data, _ in response.content.iter_chunks():
            arrivals.append(time.monotonic())
            raw += data
    text = ""
    for event in raw.split(b"\n\n"):
        if event.startswith(b"data: {"):
            choices = orjson.loads(event[len(b"data: ") :])["choices"]
            text += (choices[0]["delta"].get("content") or "") if choices else ""
    return text, arrivals


async def test_a_fast_stream_is_written_in_few_pieces_and_whole(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account
) -> None:
    gateway = await gateway_factory(relay_coalesce_ms=WINDOW_MS)
    emulator.configure(event_count=400, event_delay_ms=1)
    text, arrivals = await _stream(gateway.url, account, "fast")
    assert text == expected_answer("fast", emulator.config)
    # 400 frames over about 0.4 s: at most one write per 50 ms window, plus the head and the end.
    assert len(arrivals) < 400 / 4


async def test_a_stream_slower_than_the_window_allows_is_not_held_back(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account
) -> None:
    gateway = await gateway_factory(relay_coalesce_ms=WINDOW_MS)
    # Frames 35 ms apart: holding one until the window closes (15 ms later) would gather nothing with it.
    emulator.configure(event_count=30, event_delay_ms=35)
    text, arrivals = await _stream(gateway.url, account, "steady")
    assert text == expected_answer("steady", emulator.config)
    # Each frame is written on its own as it comes (a few may meet in one write when the machine stalls), not on
    # the window's 50 ms beat.
    assert len(arrivals) >= 30 * 0.8
    assert statistics.median(b - a for a, b in pairwise(arrivals)) < 0.045

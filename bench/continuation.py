"""Prompt bytes sent to Kimi per turn over a 20-turn conversation: the whole history merged into every prompt,
against native continuation of the same Kimi chat. Prints a table; `make bench` runs the relay benchmark.

    .venv/bin/python bench/continuation.py
"""

from __future__ import annotations

import asyncio
import tempfile
from typing import Any

from aiohttp import web
from openai import AsyncOpenAI

from kimi_free_api.app import create_app
from kimi_free_api.config import Settings
from kimi_free_api.emulator import Emulator, EmulatorConfig

TURNS = 20


async def _conversation(ttl_s: float) -> list[int]:
    """Bytes of the prompt Kimi received for each turn of one conversation."""
    emulator = Emulator(EmulatorConfig(event_count=40))
    await emulator.start("127.0.0.1", 0)
    account = emulator.create_account("bench")
    settings = Settings(
        host="127.0.0.1",
        kimi_base_url=emulator.base_url,
        data_dir=tempfile.mkdtemp(prefix="kfa-bench-"),
        conversation_ttl_s=ttl_s,
        min_start_interval_s=0.0,
    )
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    history: list[Any] = []
    try:
        async with AsyncOpenAI(base_url=f"http://{host}:{port}/v1", api_key=account.refresh_token) as client:
            for turn in range(TURNS):
                history.append({"role": "user", "content": f"Question {turn}: what about point {turn}?"})
                reply = await client.chat.completions.create(model="kimi", messages=history)
                history.append({"role": "assistant", "content": reply.choices[0].message.content})
        return [
            len("".join(b["text"]["content"] for b in r["message"]["blocks"] if "text" in b).encode())
            for r in emulator.state.chat_requests
        ]
    finally:
        await runner.cleanup()
        await emulator.stop()


async def main() -> None:
    merged = await _conversation(ttl_s=0)
    continued = await _conversation(ttl_s=600)
    print(f"prompt bytes sent to Kimi per turn, {TURNS}-turn conversation")
    print(f"{'turn':>4} {'merged':>8} {'continued':>10}")
    for turn, (a, b) in enumerate(zip(merged, continued, strict=True), 1):
        print(f"{turn:>4} {a:>8} {b:>10}")
    print(f"total {sum(merged):>8} {sum(continued):>10}  ({sum(merged) / max(1, sum(continued)):.1f}x less)")


if __name__ == "__main__":
    asyncio.run(main())

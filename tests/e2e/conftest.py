"""Fixtures for end-to-end tests: emulator + gateway on sockets, driven by the real `openai` package."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from openai import AsyncOpenAI

from kimi_free_api.app import create_app, make_runner
from kimi_free_api.config import Settings
from kimi_free_api.emulator import Account, Emulator, EmulatorConfig
from tests.e2e.support import Gateway, GatewayFactory, free_port, openai_client
from tests.tls import emulator_tls


@pytest.fixture
async def emulator(request: pytest.FixtureRequest) -> AsyncIterator[Emulator]:
    """Plain HTTP, or HTTPS when a test parametrizes it indirectly with `tests.tls.HTTPS`."""
    emu = Emulator(EmulatorConfig())
    await emu.start("127.0.0.1", 0, emulator_tls(request))
    try:
        yield emu
    finally:
        await emu.stop()


@pytest.fixture
async def gateway_factory(emulator: Emulator, tmp_path: Path) -> AsyncIterator[GatewayFactory]:
    runners: list[web.AppRunner] = []

    async def start(routes: Callable[[web.Application], None] | None = None, **overrides: Any) -> Gateway:
        # No pacing between starts by default, so tests do not wait; the pacing itself is tested explicitly.
        base = Settings(
            host="127.0.0.1",
            kimi_base_url=emulator.base_url,
            data_dir=str(tmp_path / f"data{len(runners)}"),
            min_start_interval_s=0.0,
            # Most tests check that nothing is left upstream right after an answer; continuity tests opt in.
            conversation_ttl_s=0.0,
        )
        settings = base.with_overrides(**overrides)
        app = create_app(settings)
        if routes is not None:  # a test's own routes, beside the gateway's
            routes(app)
        runner = make_runner(settings, app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        host, port = runner.addresses[0][:2]
        return Gateway(url=f"http://{host}:{port}", runner=runner)

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def gateway(gateway_factory: GatewayFactory) -> Gateway:
    return await gateway_factory()


@pytest.fixture
def account(emulator: Emulator) -> Account:
    return emulator.create_account("alice")


@pytest.fixture
async def client(gateway: Gateway, account: Account) -> AsyncIterator[AsyncOpenAI]:
    async with openai_client(gateway, account.refresh_token) as oa:
        yield oa


@pytest.fixture
async def http(gateway: Gateway) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=gateway.url, timeout=aiohttp.ClientTimeout(total=30)) as raw:
        yield raw


@pytest.fixture
async def redis_url(tmp_path: Path) -> AsyncIterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (.ci/run installs it)")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        server,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(tmp_path),
        stdout=asyncio.subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        await process.wait()

"""An emulator on a loopback socket (HTTPS when parametrized indirectly with `tests.tls.HTTPS`), an account on it,
and an HTTP session pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from kimi_free_api.emulator import Account, Emulator, EmulatorConfig
from tests.tls import emulator_tls, trusting


@pytest.fixture
async def emulator(request: pytest.FixtureRequest) -> AsyncIterator[Emulator]:
    emu = Emulator(EmulatorConfig(event_count=5, thinking_events=3, search_results=2))
    await emu.start("127.0.0.1", 0, emulator_tls(request))
    try:
        yield emu
    finally:
        await emu.stop()


@pytest.fixture
def account(emulator: Emulator) -> Account:
    return emulator.create_account("alice")


@pytest.fixture
async def session(emulator: Emulator, request: pytest.FixtureRequest) -> AsyncIterator[aiohttp.ClientSession]:
    timeout = aiohttp.ClientTimeout(total=10)
    tls = emulator.base_url.startswith("https:")
    connector = aiohttp.TCPConnector(ssl=trusting(request.getfixturevalue("tls_ca")) if tls else True)
    async with aiohttp.ClientSession(base_url=emulator.base_url, timeout=timeout, connector=connector) as http:
        yield http

"""Live streams: one per account, cleaned up however they end, and the server's own start and stop."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson

from kimi_free_api.emulator import Account, Emulator, EmulatorConfig, Fault
from kimi_free_api.emulator.framing import envelope
from kimi_free_api.emulator.g3 import CHAT

from .client import CONNECT_HEADERS, chat, chat_body, eventually


async def test_one_stream_per_account(session: aiohttp.ClientSession, account: Account, emulator: Emulator) -> None:
    emulator.configure(event_count=20, event_delay_ms=5)
    first = asyncio.create_task(chat(session, account.access_token))
    await eventually(lambda: emulator.state.active_streams.get(account.user_id) == 1)
    busy = await chat(session, account.access_token)
    assert (busy.status, busy.body["code"]) == (429, "resource_exhausted")
    assert busy.body["message"].startswith("chat.user_stream_pushing: ")
    other = await chat(session, emulator.create_account().access_token)
    assert other.status == 200, "other accounts are not affected"
    assert (await first).frames[-1] == {"done": {}}
    assert (await chat(session, account.access_token)).status == 200
    assert emulator.state.max_concurrent_streams[account.user_id] == 1


async def test_overlap_allowed_when_not_enforced(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    emulator.configure(enforce_single_stream=False, event_count=10, event_delay_ms=5)
    replies = await asyncio.gather(*(chat(session, account.access_token) for _ in range(4)))
    assert {r.status for r in replies} == {200}
    assert emulator.state.max_concurrent_streams[account.user_id] == 4
    assert emulator.state.active_streams[account.user_id] == 0


async def test_client_disconnect_is_noticed(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    emulator.configure(event_count=100, event_delay_ms=5)
    headers = {**CONNECT_HEADERS, "Authorization": f"Bearer {account.access_token}"}
    response = await session.post(CHAT, data=envelope(orjson.dumps(chat_body())), headers=headers)
    await response.content.readany()
    response.close()  # drop the connection mid-answer
    await eventually(lambda: emulator.state.active_streams[account.user_id] == 0)
    assert emulator.state.disconnects == 1
    [chat_record] = emulator.state.chats.values()
    assert chat_record.generation is None
    assert chat_record.messages[-1].status == "MESSAGE_STATUS_FAILED"
    assert (await chat(session, account.access_token)).status == 200, "the account is free again"


async def test_stop_ends_held_streams_quickly(account: Account, emulator: Emulator) -> None:
    emulator.add_fault(Fault(kind="stall"))
    async with aiohttp.ClientSession(base_url=emulator.base_url) as http:
        streaming = asyncio.create_task(chat(http, account.access_token))
        await eventually(lambda: emulator.state.active_streams.get(account.user_id) == 1)
        started = asyncio.get_running_loop().time()
        await emulator.stop()
        assert asyncio.get_running_loop().time() - started < 1.0
        assert emulator.state.active_streams[account.user_id] == 0
        [outcome] = await asyncio.gather(streaming, return_exceptions=True)
        assert isinstance(outcome, aiohttp.ClientPayloadError), "the held stream was cut"


async def test_start_on_a_free_port() -> None:
    emu = Emulator(EmulatorConfig(event_count=1))
    await emu.start("127.0.0.1", 0)
    try:
        assert emu.port > 0
        assert emu.base_url == f"http://127.0.0.1:{emu.port}"
        async with aiohttp.ClientSession(base_url=emu.base_url) as http:
            assert (await chat(http, emu.create_account().access_token)).status == 200
    finally:
        await emu.stop()

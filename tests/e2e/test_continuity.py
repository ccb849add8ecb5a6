"""Native multi-turn: a resent history continues the Kimi chat that holds it, pinned to its account."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

import aiohttp
import pytest
from openai import AsyncOpenAI

from kimi_free_api.core.conversation.prompt import PREAMBLE
from kimi_free_api.core.ports import Conversation
from kimi_free_api.emulator import Account, Emulator, Fault
from kimi_free_api.emulator.answers import expected_answer
from kimi_free_api.state.conversations import SqliteConversations
from kimi_free_api.state.sqlite import SqliteStore
from tests.e2e.support import GatewayFactory, eventually, openai_client, spawn_gateway, stop_process


def _sent(emulator: Emulator) -> dict[str, Any]:
    return emulator.state.chat_requests[-1]


def _prompt(request: dict[str, Any]) -> str:
    return "".join(b["text"]["content"] for b in request["message"]["blocks"] if "text" in b)


async def _turns(client: AsyncOpenAI, texts: list[str], stream: bool = False) -> list[Any]:
    """A client that resends the whole history every turn, as ordinary clients do."""
    history: list[Any] = []
    for text in texts:
        history.append({"role": "user", "content": text})
        if stream:
            chunks = await client.chat.completions.create(model="kimi", messages=history, stream=True)
            reply = "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
        else:
            completion = await client.chat.completions.create(model="kimi", messages=history)
            reply = completion.choices[0].message.content or ""
        history.append({"role": "assistant", "content": reply})
    return history


async def test_resent_history_continues_the_same_chat(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account
) -> None:
    gateway = await gateway_factory(conversation_ttl_s=60)
    async with openai_client(gateway, account.refresh_token) as client:
        for stream in (False, True):
            emulator.state.chat_requests.clear()
            history = await _turns(client, ["first question", "second", "third"], stream=stream)
            requests = list(emulator.state.chat_requests)
            assert "chat_id" not in requests[0]
            chat_id = requests[1]["chat_id"]
            assert requests[2]["chat_id"] == chat_id
            # Only the new turn travels, answering Kimi's last message.
            assert [_prompt(r) for r in requests] == ["first question", "second", "third"]
            assert requests[1]["message"]["parent_id"] and requests[2]["message"]["parent_id"]
            assert history[-1]["content"] == expected_answer("third", emulator.config)
            roles = [m.role for m in emulator.state.chats[chat_id].messages]
            assert roles == ["user", "assistant"] * 3
    assert emulator.state.live_chats == 2  # kept for the next turn, until the idle time-to-live


async def test_edited_history_falls_back_to_the_whole_transcript(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account
) -> None:
    gateway = await gateway_factory(conversation_ttl_s=60)
    async with openai_client(gateway, account.refresh_token) as client:
        history = await _turns(client, ["original"])
        history[0]["content"] = "edited"
        history.append({"role": "user", "content": "and now?"})
        await client.chat.completions.create(model="kimi", messages=history)
    sent = _sent(emulator)
    assert "chat_id" not in sent
    assert _prompt(sent).startswith(PREAMBLE) and "edited" in _prompt(sent)


async def test_a_chat_gone_upstream_falls_back(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account
) -> None:
    gateway = await gateway_factory(conversation_ttl_s=60)
    async with openai_client(gateway, account.refresh_token) as client:
        history = await _turns(client, ["remember"])
        emulator.add_fault(Fault(kind="not_found"))
        history.append({"role": "user", "content": "recall"})
        reply = await client.chat.completions.create(model="kimi", messages=history)
    assert reply.choices[0].message.content  # never an empty answer (kimi-free-api issue #160)
    assert "chat_id" not in _sent(emulator)
    assert "recall" in _prompt(_sent(emulator)) and "remember" in _prompt(_sent(emulator))


async def test_continuation_stays_on_the_owning_account(gateway_factory: GatewayFactory, emulator: Emulator) -> None:
    first, second = emulator.create_account("one"), emulator.create_account("two")
    gateway = await gateway_factory(conversation_ttl_s=60)
    async with openai_client(gateway, f"{first.refresh_token},{second.refresh_token}") as client:
        for n in range(3):
            await _turns(client, [f"conversation {n}", "turn 2", "turn 3"])
    assert emulator.state.live_chats == 3
    for chat in emulator.state.chats.values():
        assert len(chat.messages) == 6  # all three turns landed in the chat of the account that owns it


async def test_idle_chats_are_swept(gateway_factory: GatewayFactory, emulator: Emulator, account: Account) -> None:
    gateway = await gateway_factory(conversation_ttl_s=0.5, sweep_interval_s=0.2)
    async with openai_client(gateway, account.refresh_token) as client:
        await _turns(client, ["short-lived"])
    assert emulator.state.live_chats == 1
    await eventually(lambda: emulator.state.live_chats == 0, timeout_s=5)


async def test_a_restarted_gateway_continues_the_conversation(
    gateway_factory: GatewayFactory, emulator: Emulator, account: Account, tmp_path: Any
) -> None:
    data_dir = str(tmp_path / "shared-data")
    first = await gateway_factory(conversation_ttl_s=60, data_dir=data_dir)
    async with openai_client(first, account.refresh_token) as client:
        history = await _turns(client, ["before the restart"])
    await first.stop()
    second = await gateway_factory(conversation_ttl_s=60, data_dir=data_dir)
    history.append({"role": "user", "content": "after the restart"})
    async with openai_client(second, account.refresh_token) as client:
        await client.chat.completions.create(model="kimi", messages=history)
    assert _sent(emulator).get("chat_id")
    assert _prompt(_sent(emulator)) == "after the restart"


async def test_chat_orphaned_by_a_killed_gateway_is_deleted_at_next_start(
    emulator: Emulator, account: Account, tmp_path: Any
) -> None:
    emulator.configure(event_count=400, event_delay_ms=20)
    env = {"KIMI_BASE_URL": emulator.base_url, "DATA_DIR": str(tmp_path / "data")}
    process, url = await spawn_gateway(env)
    body = {"model": "kimi", "messages": [{"role": "user", "content": "long"}], "stream": True}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {account.refresh_token}"}
        ) as response,
    ):
        await response.content.readline()
        await asyncio.sleep(0.3)  # mid-stream
        process.send_signal(signal.SIGKILL)
        await process.wait()
    assert emulator.state.live_chats == 1  # left behind by the killed process
    restarted, _ = await spawn_gateway(env)
    try:
        await eventually(lambda: emulator.state.live_chats == 0, timeout_s=10)
    finally:
        await stop_process(restarted)


async def test_a_chat_whose_token_is_dead_is_given_up_after_a_few_attempts(
    gateway_factory: GatewayFactory, emulator: Emulator, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # What `make demo` used to leave in a shared data directory: a chat held by a token no Kimi accepts.
    data_dir = tmp_path / "inherited"
    store = SqliteStore.in_dir(str(data_dir))
    conversations = SqliteConversations(store)
    await conversations.put(Conversation("d0a1b2c3d4e5f6g7h8i9", "demo-account", "demo-token-never-real", key="k"))
    await conversations.close()
    store.close()
    caplog.set_level(logging.DEBUG, logger="kimi_free_api.core.conversation.janitor")

    gateway = await gateway_factory(
        data_dir=str(data_dir), sweep_interval_s=0.05, cleanup_retry_s=0.01, cleanup_attempts=3
    )

    def said(level: int) -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name.endswith("janitor") and r.levelno == level]

    await eventually(lambda: bool(said(logging.WARNING)))
    await asyncio.sleep(0.3)  # several more sweeps: nothing is tried or said again
    await gateway.stop()
    [gave_up] = said(logging.WARNING)
    assert "d0a1b2c3d4e5f6g7h8i9" in gave_up and "after 3 failed attempts" in gave_up
    assert len(said(logging.INFO)) == 1, "the first failure is said once; the retries are quiet"
    assert len(said(logging.DEBUG)) == 1
    assert "demo-token-never-real" not in caplog.text
    reopened = SqliteStore.in_dir(str(data_dir))
    try:
        assert await SqliteConversations(reopened).by_chat("d0a1b2c3d4e5f6g7h8i9") is None
    finally:
        reopened.close()

"""Nothing is left behind upstream: chats are deleted after the answer, on disconnect, and kept only on request."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from openai import AsyncOpenAI, NotFoundError

from kimi_free_api.emulator import Account, Emulator
from kimi_free_api.emulator.answers import expected_answer
from tests.e2e.support import eventually


async def test_chat_is_deleted_after_streamed_and_plain_answers(client: AsyncOpenAI, emulator: Emulator) -> None:
    await client.chat.completions.create(model="kimi", messages=[{"role": "user", "content": "a"}])
    stream = await client.chat.completions.create(
        model="kimi", messages=[{"role": "user", "content": "b"}], stream=True
    )
    async for _ in stream:
        pass
    await eventually(lambda: emulator.state.deleted == 2)
    assert emulator.state.live_chats == 0
    assert emulator.state.cancelled == 0  # finished answers need no cancel call


async def test_conversation_id_keeps_and_continues_the_chat(client: AsyncOpenAI, emulator: Emulator) -> None:
    first = await client.chat.completions.create(
        model="kimi", messages=[{"role": "user", "content": "remember 7"}], extra_body={"conversation_id": "none"}
    )
    chat_id = first.id
    assert len(chat_id) == 36, "Kimi's UUID-style chat id"
    await asyncio.sleep(0.1)
    assert emulator.state.live_chats == 1
    assert emulator.state.deleted == 0

    second = await client.chat.completions.create(
        model="kimi",
        messages=[
            {"role": "user", "content": "remember 7"},
            {"role": "assistant", "content": first.choices[0].message.content},
            {"role": "user", "content": "what number?"},
        ],
        extra_body={"conversation_id": chat_id},
    )
    assert second.id == chat_id
    assert second.choices[0].message.content == expected_answer("what number?", emulator.config)
    sent = emulator.state.chat_requests[-1]
    assert sent["chat_id"] == chat_id
    assert sent["message"]["blocks"][0]["text"]["content"] == "what number?"
    assert emulator.state.live_chats == 1
    assert [m.role for m in emulator.state.chats[chat_id].messages] == ["user", "assistant", "user", "assistant"]


async def test_reusing_a_deleted_chat_is_a_clear_error(client: AsyncOpenAI, emulator: Emulator) -> None:
    first = await client.chat.completions.create(model="kimi", messages=[{"role": "user", "content": "gone"}])
    await eventually(lambda: emulator.state.live_chats == 0)
    with pytest.raises(NotFoundError) as caught:
        await client.chat.completions.create(
            model="kimi", messages=[{"role": "user", "content": "again"}], extra_body={"conversation_id": first.id}
        )
    assert caught.value.code == "conversation_not_found"


async def test_client_disconnect_cancels_upstream_and_deletes(
    http: aiohttp.ClientSession, emulator: Emulator, account: Account
) -> None:
    emulator.configure(event_count=200, event_delay_ms=20)
    body = {"model": "kimi", "messages": [{"role": "user", "content": "long"}], "stream": True}
    headers = {"Authorization": f"Bearer {account.refresh_token}"}
    async with http.post("/v1/chat/completions", json=body, headers=headers) as response:
        assert response.status == 200
        await response.content.readline()
        await response.content.readline()
        await asyncio.sleep(0.1)
        response.close()  # the client goes away mid-stream
    await eventually(lambda: emulator.state.live_chats == 0)
    assert emulator.state.deleted == 1
    await eventually(lambda: sum(emulator.state.active_streams.values()) == 0)
    assert emulator.state.cancelled + emulator.state.disconnects >= 1
    # The upstream stream ended long before its 200 frames (4 s) would have.
    assert emulator.state.requests["chat"] == 1


async def _give_up_waiting(http: aiohttp.ClientSession, account: Account, prompt: str) -> None:
    """A streaming client that leaves after half a second without a byte of the answer."""
    body = {"model": "kimi", "messages": [{"role": "user", "content": prompt}], "stream": True}
    headers = {"Authorization": f"Bearer {account.refresh_token}"}
    with pytest.raises(asyncio.TimeoutError):
        async with http.post(
            "/v1/chat/completions", json=body, headers=headers, timeout=aiohttp.ClientTimeout(total=0.5)
        ):
            pass


async def test_disconnect_while_waiting_for_first_content(
    http: aiohttp.ClientSession, emulator: Emulator, account: Account
) -> None:
    emulator.configure(first_event_delay_ms=3000)
    await _give_up_waiting(http, account, "slow start")
    await eventually(lambda: sum(emulator.state.active_streams.values()) == 0, timeout_s=5)
    await eventually(lambda: emulator.state.live_chats == 0, timeout_s=5)


async def test_disconnect_after_the_chat_is_named_but_before_its_first_words(
    http: aiohttp.ClientSession, emulator: Emulator, account: Account
) -> None:
    # Kimi names the chat at once, then is slow to write: the gateway knows what to delete without waiting.
    emulator.configure(event_delay_ms=20_000, event_count=2)
    await _give_up_waiting(http, account, "named, then slow")
    await eventually(lambda: emulator.state.live_chats == 0, timeout_s=3)
    assert emulator.state.cancelled == 1
    await eventually(lambda: sum(emulator.state.active_streams.values()) == 0, timeout_s=3)

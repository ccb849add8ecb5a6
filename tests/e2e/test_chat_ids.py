"""`conversation_id` with both shapes of Kimi chat id, and with something that is no chat id at all."""

from __future__ import annotations

import pytest
from openai import AsyncOpenAI, NotFoundError

from kimi_free_api.emulator import Emulator


async def _ask(client: AsyncOpenAI, text: str, conversation_id: str) -> str:
    reply = await client.chat.completions.create(
        model="kimi", messages=[{"role": "user", "content": text}], extra_body={"conversation_id": conversation_id}
    )
    return reply.id


@pytest.mark.parametrize(("style", "length"), [("uuid", 36), ("xid", 20)])
async def test_both_id_shapes_continue_their_chat(
    client: AsyncOpenAI, emulator: Emulator, style: str, length: int
) -> None:
    emulator.configure(chat_id_style=style)
    chat_id = await _ask(client, "first", "none")
    assert len(chat_id) == length
    for given in (chat_id, f"conv-{chat_id}"):
        assert await _ask(client, "next", given) == chat_id
        assert emulator.state.chat_requests[-1]["chat_id"] == chat_id
    assert len(emulator.state.chats[chat_id].messages) == 6
    assert emulator.state.live_chats == 1


@pytest.mark.parametrize("given", ["hello", "chat-42", "19c2a4f0-3b1d-7e52-8a90"])
async def test_a_conversation_id_that_is_no_chat_id_is_404(client: AsyncOpenAI, emulator: Emulator, given: str) -> None:
    with pytest.raises(NotFoundError) as caught:
        await _ask(client, "hi", given)
    assert (caught.value.code, caught.value.param) == ("conversation_not_found", "conversation_id")
    assert emulator.state.requests["chat"] == 0, "no chat was started, so none is left behind"


async def test_none_still_keeps_a_new_chat(client: AsyncOpenAI, emulator: Emulator) -> None:
    for keep in ("none", "None", ""):
        await _ask(client, "kept", keep)
    assert emulator.state.live_chats == 3
    assert emulator.state.deleted == 0

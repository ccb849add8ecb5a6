"""Ownership on the Anthropic surface: in server mode two API keys (sent as `x-api-key`) share the server's Kimi
accounts, so `/v1/messages` must keep one key's files and kept chats from the other, as the OpenAI surface does
(tests/e2e/test_isolation.py). A refusal is Anthropic's 404 `not_found_error`, before anything reaches Kimi."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anthropic
import pytest
from anthropic import AsyncAnthropic
from openai import AsyncOpenAI

from kimi_free_api.emulator import Emulator
from tests.e2e.anthropic_support import anthropic_client
from tests.e2e.support import GatewayFactory, openai_client
from tests.fileserver import pdf

KEY_A = "kfa-anthropic-isolation-alice-01"
KEY_B = "kfa-anthropic-isolation-bob-2345"


@dataclass
class TwoKeys:
    files_a: AsyncOpenAI
    a: AsyncAnthropic
    b: AsyncAnthropic


@pytest.fixture
async def keys(gateway_factory: GatewayFactory, emulator: Emulator) -> AsyncIterator[TwoKeys]:
    # One server account: what key A leaves on it is within reach of key B's requests but for the gateway.
    shared = emulator.create_account("server")
    gateway = await gateway_factory(
        kimi_tokens=shared.refresh_token, api_keys=f"{KEY_A},{KEY_B}", conversation_ttl_s=600.0
    )
    async with (
        openai_client(gateway, KEY_A) as files_a,
        anthropic_client(gateway, api_key=KEY_A) as a,
        anthropic_client(gateway, api_key=KEY_B) as b,
    ):
        yield TwoKeys(files_a, a, b)


def _document(file_id: str) -> Any:
    source = {"type": "file", "file_id": file_id}
    return [{"role": "user", "content": [{"type": "document", "source": source}, {"type": "text", "text": "Read"}]}]


def _text(message: anthropic.types.Message) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


async def test_another_key_cannot_use_a_file_in_a_document_block(keys: TwoKeys, emulator: Emulator) -> None:
    created = await keys.files_a.files.create(file=("a.pdf", pdf("Alice's notes")), purpose="user_data")

    for stream in (False, True):
        with pytest.raises(anthropic.NotFoundError) as caught:
            await keys.b.messages.create(model="kimi", max_tokens=64, messages=_document(created.id), stream=stream)
        error = caught.value.body["error"]  # type: ignore[index]
        assert error["type"] == "not_found_error"
        assert created.id in error["message"]
    assert emulator.state.requests["chat"] == 0, "nothing reached Kimi for key B"

    reply = await keys.a.messages.create(model="kimi", max_tokens=64, messages=_document(created.id))
    assert reply.stop_reason == "end_turn" and _text(reply)
    [sent] = emulator.state.chat_requests
    [uploaded] = emulator.state.files.values()
    assert uploaded.id in str(sent), "key A's request carried its file to Kimi"


async def test_another_key_cannot_continue_a_kept_chat(keys: TwoKeys, emulator: Emulator) -> None:
    question: Any = {"role": "user", "content": "my secret is 7"}
    first = await keys.a.messages.create(model="kimi", max_tokens=64, messages=[question])
    [chat_a] = emulator.state.chats.values()
    before = len(chat_a.messages)
    # The history key A was answered, resent word for word: continuity would carry it on in A's Kimi chat.
    history: Any = [question, {"role": "assistant", "content": _text(first)}, {"role": "user", "content": "what?"}]

    await keys.b.messages.create(model="kimi", max_tokens=64, messages=history)
    assert len(chat_a.messages) == before, "key B's identical history went to a chat of its own"
    assert len(emulator.state.chats) == 2
    assert "my secret is 7" in emulator.state.chat_requests[-1]["message"]["blocks"][0]["text"]["content"]

    await keys.a.messages.create(model="kimi", max_tokens=64, messages=history)
    assert len(chat_a.messages) > before, "key A's own history still continues its chat"
    assert emulator.state.chat_requests[-1]["chat_id"] == chat_a.id

"""Ownership: what one client keeps on the gateway (files, kept chats, stored responses) is invisible to another.

In server mode two API keys share the server's Kimi accounts, so only the gateway can keep them apart; in seed
mode two Kimi tokens are two owners. Every refusal is the 404 of something that does not exist.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI

from kimi_free_api.emulator import Emulator
from kimi_free_api.emulator.answers import expected_answer
from tests.e2e.support import Gateway, GatewayFactory, openai_client
from tests.fileserver import pdf

KEY_A = "kfa-isolation-key-alice-0123"
KEY_B = "kfa-isolation-key-bob-456789"


@dataclass
class TwoClients:
    gateway: Gateway
    a: AsyncOpenAI
    b: AsyncOpenAI


async def _server(gateway_factory: GatewayFactory, emulator: Emulator) -> Gateway:
    # One server account: whatever key A made lives on the account key B's requests run on too.
    shared = emulator.create_account("server")
    return await gateway_factory(kimi_tokens=shared.refresh_token, api_keys=f"{KEY_A},{KEY_B}")


@pytest.fixture(params=["server", "seed"])
async def clients(
    request: pytest.FixtureRequest, gateway_factory: GatewayFactory, emulator: Emulator
) -> AsyncIterator[TwoClients]:
    """Two API keys on the same server account, or two clients with their own Kimi tokens."""
    if request.param == "server":
        gateway, keys = await _server(gateway_factory, emulator), (KEY_A, KEY_B)
    else:
        gateway = await gateway_factory()
        keys = (emulator.create_account("alice").refresh_token, emulator.create_account("bob").refresh_token)
    async with openai_client(gateway, keys[0]) as a, openai_client(gateway, keys[1]) as b:
        yield TwoClients(gateway, a, b)


@pytest.fixture
async def server(gateway_factory: GatewayFactory, emulator: Emulator) -> AsyncIterator[TwoClients]:
    gateway = await _server(gateway_factory, emulator)
    async with openai_client(gateway, KEY_A) as a, openai_client(gateway, KEY_B) as b:
        yield TwoClients(gateway, a, b)


def _file_message(file_id: str) -> Any:
    return [
        {"role": "user", "content": [{"type": "text", "text": "Read"}, {"type": "file", "file": {"file_id": file_id}}]}
    ]


async def test_another_client_cannot_see_use_or_delete_a_file(clients: TwoClients, emulator: Emulator) -> None:
    created = await clients.a.files.create(file=("a.pdf", pdf("Alice's"), "application/pdf"), purpose="user_data")

    for attempt in (
        clients.b.files.retrieve(created.id),
        clients.b.files.content(created.id),
        clients.b.files.delete(created.id),
        clients.b.chat.completions.create(model="kimi", messages=_file_message(created.id)),
    ):
        with pytest.raises(openai.NotFoundError) as caught:
            await attempt
        assert caught.value.code == "file_not_found"
    assert [f async for f in clients.b.files.list()] == []
    assert emulator.state.requests["chat"] == 0

    # Key A still has it, can use it, and is told plainly why its content cannot be downloaded.
    assert (await clients.a.files.retrieve(created.id)).filename == "a.pdf"
    assert [f.id async for f in clients.a.files.list()] == [created.id]
    reply = await clients.a.chat.completions.create(model="kimi", messages=_file_message(created.id))
    assert reply.choices[0].message.content
    with pytest.raises(openai.BadRequestError) as refused:
        await clients.a.files.content(created.id)
    assert refused.value.code == "file_content_unavailable"
    assert (await clients.a.files.delete(created.id)).deleted


async def test_another_client_cannot_continue_a_kept_chat(clients: TwoClients, emulator: Emulator) -> None:
    first = await clients.a.chat.completions.create(
        model="kimi", messages=[{"role": "user", "content": "my secret is 7"}], extra_body={"conversation_id": "none"}
    )
    [chat] = emulator.state.chats.values()
    before = len(chat.messages)

    with pytest.raises(openai.NotFoundError) as caught:
        await clients.b.chat.completions.create(
            model="kimi",
            messages=[{"role": "user", "content": "what is it?"}],
            extra_body={"conversation_id": first.id},
        )
    assert caught.value.code == "conversation_not_found"
    assert len(chat.messages) == before, "nothing was written into the other client's chat"

    again = await clients.a.chat.completions.create(
        model="kimi", messages=[{"role": "user", "content": "what is it?"}], extra_body={"conversation_id": first.id}
    )
    assert again.id == first.id
    assert again.choices[0].message.content == expected_answer("what is it?", emulator.config)
    assert len(chat.messages) > before


async def test_an_unknown_chat_id_cannot_reach_the_shared_accounts(server: TwoClients, emulator: Emulator) -> None:
    # A chat id this gateway never kept for anyone: on accounts shared by every key it might be anyone's.
    with pytest.raises(openai.NotFoundError) as caught:
        await server.b.chat.completions.create(
            model="kimi",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"conversation_id": "d0a1b2c3d4e5f6g7h8i9"},
        )
    assert caught.value.code == "conversation_not_found"
    assert emulator.state.requests["chat"] == 0


async def test_another_client_cannot_read_delete_or_continue_a_stored_response(
    clients: TwoClients, emulator: Emulator
) -> None:
    created = await clients.a.responses.create(model="kimi", input="remember 7")
    for attempt in (
        clients.b.responses.retrieve(created.id),
        clients.b.responses.delete(created.id),
        clients.b.responses.create(model="kimi", input="and?", previous_response_id=created.id),
    ):
        with pytest.raises(openai.NotFoundError):
            await attempt
    assert (await clients.a.responses.retrieve(created.id)).id == created.id
    follow = await clients.a.responses.create(model="kimi", input="and?", previous_response_id=created.id)
    assert follow.status == "completed"
    prompt = emulator.state.chat_requests[-1]["message"]["blocks"][0]["text"]["content"]
    assert "remember 7" in prompt and "and?" in prompt, "key A's follow-up carries its history"
    await clients.a.responses.delete(created.id)


async def test_token_check_needs_an_api_key_in_server_mode(server: TwoClients, emulator: Emulator) -> None:
    account = emulator.create_account("someone")
    async with aiohttp.ClientSession(base_url=server.gateway.url) as http:
        for headers in ({}, {"Authorization": "Bearer kfa-not-a-key-of-this-server"}):
            async with http.post("/token/check", json={"token": account.refresh_token}, headers=headers) as response:
                assert response.status == 401
                assert (await response.json())["error"]["code"] == "invalid_api_key"
        async with http.post(
            "/token/check", json={"token": account.refresh_token}, headers={"Authorization": f"Bearer {KEY_A}"}
        ) as response:
            assert response.status == 200
            assert await response.json() == {"live": True}


async def test_a_repeated_history_continues_only_its_owners_chat(
    gateway_factory: GatewayFactory, emulator: Emulator
) -> None:
    shared = emulator.create_account("server")
    gateway = await gateway_factory(
        kimi_tokens=shared.refresh_token, api_keys=f"{KEY_A},{KEY_B}", conversation_ttl_s=600.0
    )
    question: Any = {"role": "user", "content": "hello"}
    async with openai_client(gateway, KEY_A) as a, openai_client(gateway, KEY_B) as b:
        first = await a.chat.completions.create(model="kimi", messages=[question])
        [chat_a] = emulator.state.chats.values()
        before = len(chat_a.messages)
        history: Any = [question, {"role": "assistant", "content": first.choices[0].message.content}]
        await b.chat.completions.create(model="kimi", messages=[*history, {"role": "user", "content": "more"}])
        assert len(chat_a.messages) == before, "key B's identical history went to a chat of its own"
        assert len(emulator.state.chats) == 2
        await a.chat.completions.create(model="kimi", messages=[*history, {"role": "user", "content": "more"}])
        assert len(chat_a.messages) > before, "key A's own history still continues its chat"

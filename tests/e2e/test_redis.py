"""Several gateway processes behind one load balancer, sharing a real redis-server."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI

from kimi_free_api.core.conversation.response_store import StoredResponse
from kimi_free_api.core.ports import Conversation
from kimi_free_api.core.request import Message
from kimi_free_api.emulator import Account, Emulator
from kimi_free_api.emulator.answers import expected_answer
from kimi_free_api.state.redis import RedisResponseStore, RedisState
from tests.e2e.support import eventually, spawn_gateway, stop_process
from tests.fileserver import pdf

API_KEY = "shared-gateway-key-0123456789"


@asynccontextmanager
async def _both_running(emulator: Emulator, redis_url: str, tmp_path: Any) -> AsyncIterator[tuple[str, str]]:
    (one, one_url), (other, other_url) = await _two_gateways(emulator, redis_url, tmp_path)
    try:
        yield one_url, other_url
    finally:
        for process in (one, other):
            await stop_process(process)


def _client(url: str, account: Account) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=f"{url}/v1", api_key=account.refresh_token, max_retries=0)


async def _two_gateways(emulator: Emulator, redis_url: str, tmp_path: Any, **env: str) -> list[tuple[Any, str]]:
    base = {"KIMI_BASE_URL": emulator.base_url, "REDIS_URL": redis_url, "MIN_START_INTERVAL_S": "0", **env}
    return [await spawn_gateway({**base, "DATA_DIR": str(tmp_path / f"gw{n}")}) for n in range(2)]


async def test_a_conversation_alternating_between_instances_continues(
    emulator: Emulator, account: Account, redis_url: str, tmp_path: Any
) -> None:
    gateways = await _two_gateways(emulator, redis_url, tmp_path)
    try:
        history: list[Any] = []
        for turn in range(4):
            _, url = gateways[turn % 2]
            history.append({"role": "user", "content": f"turn {turn}"})
            async with AsyncOpenAI(base_url=url + "/v1", api_key=account.refresh_token, max_retries=0) as client:
                reply = await client.chat.completions.create(model="kimi", messages=history)
            history.append({"role": "assistant", "content": reply.choices[0].message.content})
            assert reply.choices[0].message.content == expected_answer(f"turn {turn}", emulator.config)
        requests = list(emulator.state.chat_requests)
        assert "chat_id" not in requests[0]
        assert {r.get("chat_id") for r in requests[1:]} == {requests[1]["chat_id"]}
        assert emulator.state.live_chats == 1
    finally:
        for process, _ in gateways:
            await stop_process(process)


async def test_the_per_account_cap_holds_across_instances(emulator: Emulator, redis_url: str, tmp_path: Any) -> None:
    # The emulator lets streams overlap here, so a double-used account would show in its counts.
    emulator.configure(event_count=10, event_delay_ms=10, enforce_single_stream=False)
    accounts = [emulator.create_account(f"shared{n}") for n in range(2)]
    gateways = await _two_gateways(
        emulator,
        redis_url,
        tmp_path,
        KIMI_TOKENS=",".join(a.refresh_token for a in accounts),
        API_KEYS=API_KEY,
        CAPACITY_WAIT_S="60",
        CONVERSATION_TTL_S="0",
    )

    async def ask(n: int) -> str:
        _, url = gateways[n % 2]
        async with AsyncOpenAI(base_url=url + "/v1", api_key=API_KEY, max_retries=0) as client:
            chunks = await client.chat.completions.create(
                model="kimi", messages=[{"role": "user", "content": f"q{n}"}], stream=True
            )
            return "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])

    try:
        answers = await asyncio.gather(*(ask(n) for n in range(40)))
        assert answers == [expected_answer(f"q{n}", emulator.config) for n in range(40)]
        assert emulator.state.max_concurrent_streams == {a.user_id: 1 for a in accounts}
        await eventually(lambda: emulator.state.live_chats == 0)
    finally:
        for process, _ in gateways:
            await stop_process(process)


async def test_another_instance_deletes_the_chat_of_a_killed_one(
    emulator: Emulator, account: Account, redis_url: str, tmp_path: Any
) -> None:
    emulator.configure(event_count=400, event_delay_ms=20)
    (doomed, doomed_url), (survivor, _) = await _two_gateways(emulator, redis_url, tmp_path, SWEEP_INTERVAL_S="0.3")
    body = {"model": "kimi", "messages": [{"role": "user", "content": "long"}], "stream": True}
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{doomed_url}/v1/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {account.refresh_token}"},
            ) as response,
        ):
            await response.content.readline()
            await asyncio.sleep(0.3)
            doomed.send_signal(signal.SIGKILL)
            await doomed.wait()
        assert emulator.state.live_chats == 1
        # The killed instance's heartbeat runs out (3 sweeps), then the survivor deletes its orphan.
        await eventually(lambda: emulator.state.live_chats == 0, timeout_s=10)
    finally:
        await stop_process(survivor)


async def test_a_file_uploaded_through_one_instance_is_known_to_the_other(
    emulator: Emulator, account: Account, redis_url: str, tmp_path: Any
) -> None:
    async with _both_running(emulator, redis_url, tmp_path) as (one_url, other_url):
        async with _client(one_url, account) as client:
            created = await client.files.create(file=("notes.pdf", pdf("Shared by instances")), purpose="user_data")
        async with _client(other_url, account) as client:
            assert (await client.files.retrieve(created.id)).model_dump() == created.model_dump()
            assert [f.id async for f in client.files.list()] == [created.id]
            await client.chat.completions.create(
                model="kimi",
                messages=[{"role": "user", "content": [{"type": "file", "file": {"file_id": created.id}}]}],
            )
            await client.files.delete(created.id)
        async with _client(one_url, account) as client:
            with pytest.raises(openai.NotFoundError):
                await client.files.retrieve(created.id)
        assert emulator.state.requests["upload"] == 1


async def test_a_response_stored_by_one_instance_is_known_to_the_other(
    emulator: Emulator, account: Account, redis_url: str, tmp_path: Any
) -> None:
    async with _both_running(emulator, redis_url, tmp_path) as (one_url, other_url):
        async with _client(one_url, account) as client:
            created = await client.responses.create(model="kimi", input="Shared memory")
        async with _client(other_url, account) as client:
            assert (await client.responses.retrieve(created.id)).model_dump() == created.model_dump()
            follow = await client.responses.create(model="kimi", input="Next", previous_response_id=created.id)
            assert follow.status == "completed"
            await client.responses.delete(created.id)
        async with _client(one_url, account) as client:
            with pytest.raises(openai.NotFoundError):
                await client.responses.retrieve(created.id)


async def test_the_redis_response_store_keeps_the_most_recently_used(redis_url: str) -> None:
    state = RedisState.from_url(redis_url)
    try:
        store = RedisResponseStore(state, capacity=2)
        transcript = (Message(role="user", content="hi"), Message(role="assistant", content="hello"))
        for n in range(2):
            await store.put(StoredResponse(f"resp_{n}", "owner", transcript, b'{"n": %d}' % n))
        assert await store.get("resp_0") is not None  # used: now resp_1 is the oldest
        await store.put(StoredResponse("resp_2", "owner", (), b"{}"))
        assert await store.get("resp_1") is None
        assert await store.get("resp_0") == StoredResponse("resp_0", "owner", transcript, b'{"n": 0}')
        assert await store.delete("resp_0")
        assert not await store.delete("resp_0")
    finally:
        await state.close()


async def test_a_conversations_owner_and_attempts_are_shared(redis_url: str) -> None:
    state = RedisState.from_url(redis_url)
    try:
        kept = Conversation("chat-owned", "acct", "tok", "msg", "key", float("inf"), owner="key-owner", attempts=3)
        await state.put(kept)
        assert await state.by_chat("chat-owned") == kept
        assert await state.by_key("key") == kept
        # A record written before owners existed: no owner (only seed clients may continue it), no attempts yet.
        await state.client.hset(
            "kfa:conv:chat-old",
            mapping={"chat_id": "chat-old", "account_id": "a", "token": "t", "message_id": "", "key": "",
                     "expires_at": "inf", "writer": ""},
        )  # fmt: skip
        old = await state.by_chat("chat-old")
        assert old is not None and (old.owner, old.attempts) == ("", 0)
    finally:
        await state.client.flushdb()
        await state.close()

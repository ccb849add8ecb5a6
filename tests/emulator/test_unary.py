"""The unary G3 calls and the two token refresh calls."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from kimi_free_api.emulator import Account, Emulator, Fault
from kimi_free_api.emulator.auth import CONNECT_REFRESH, REST_REFRESH
from kimi_free_api.emulator.g3 import AVAILABLE_MODELS, CANCEL_CHAT, DELETE_CHAT, LIST_CHATS, SUBSCRIPTION

from .client import call, chat, chat_body, eventually


async def test_delete_chat(session: aiohttp.ClientSession, account: Account, emulator: Emulator) -> None:
    chat_id = (await chat(session, account.access_token)).chat_id()
    intruder = emulator.create_account("mallory")
    status, body = await call(session, DELETE_CHAT, intruder.access_token, {"chat_id": chat_id})
    assert (status, body["code"]) == (404, "not_found")
    assert body["message"].startswith("chat.not_found")
    assert await call(session, DELETE_CHAT, account.access_token, {"chat_id": chat_id}) == (200, {})
    assert (emulator.state.live_chats, emulator.state.deleted) == (0, 1)
    assert (await call(session, DELETE_CHAT, account.access_token, {"chatId": chat_id}))[0] == 404
    assert (await chat(session, account.access_token, chat_body(chat_id=chat_id))).status == 404
    status, body = await call(session, DELETE_CHAT, account.access_token, {})
    assert (status, body["code"]) == (400, "invalid_argument")


async def test_delete_fault(session: aiohttp.ClientSession, account: Account, emulator: Emulator) -> None:
    chat_id = (await chat(session, account.access_token)).chat_id()
    emulator.add_fault(Fault(kind="unavailable", endpoint="delete"))
    status, body = await call(session, DELETE_CHAT, account.access_token, {"chat_id": chat_id})
    assert (status, body["code"]) == (503, "unavailable")
    assert emulator.state.live_chats == 1
    assert (await call(session, DELETE_CHAT, account.access_token, {"chat_id": chat_id}))[0] == 200


async def test_cancel_chat_stops_the_answer(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    emulator.configure(event_count=200, event_delay_ms=5)
    streaming = asyncio.create_task(chat(session, account.access_token, chat_body("long")))
    await eventually(lambda: bool(emulator.state.chats))
    await asyncio.sleep(0.05)
    [chat_id] = emulator.state.chats
    assert await call(session, CANCEL_CHAT, account.access_token, {"chat_id": chat_id, "message_id": ""}) == (200, {})
    reply = await streaming
    answer = list(reply.block_texts().values())[-1]
    assert 0 < len([f for f in reply.ops if f.get("mask") == "block.text.content"]) < 200
    assert reply.frames[-1] == {"done": {}}
    assert reply.frames[-2]["message"]["status"] == "MESSAGE_STATUS_COMPLETED"
    assert emulator.state.chats[chat_id].messages[-1].content == answer
    assert emulator.state.cancelled == 1
    assert await call(session, CANCEL_CHAT, account.access_token, {"chat_id": chat_id}) == (200, {})
    assert emulator.state.cancelled == 1, "nothing was running any more"


async def test_list_chats(session: aiohttp.ClientSession, account: Account, emulator: Emulator) -> None:
    first = (await chat(session, account.access_token, chat_body("first"))).chat_id()
    second = (await chat(session, account.access_token, chat_body("second"))).chat_id()
    await chat(session, emulator.create_account().access_token)
    status, body = await call(session, LIST_CHATS, account.access_token, {})
    assert status == 200
    assert [c["id"] for c in body["chats"]] == [second, first]
    assert body["chats"][0]["messageContent"].startswith("Echo: second")
    assert set(body["chats"][0]) == {"id", "name", "messageContent", "createTime", "updateTime"}


async def test_available_models(session: aiohttp.ClientSession, account: Account, emulator: Emulator) -> None:
    status, body = await call(session, AVAILABLE_MODELS, account.access_token, {}, **{"X-Msh-Version": "2.0.0"})
    assert status == 200
    assert body["availableModels"] == emulator.config.models
    assert body["defaultScenario"] == {"scenario": "SCENARIO_CHAT", "model": "k2d6-chat"}
    k3 = next(m for m in body["availableModels"] if m["id"] == "k3")
    assert "thinking" not in k3 and "REASONING_EFFORT_NONE" not in k3["reasoningEffortOptions"]
    assert {"key", "defaultReasoningEffort", "contextLengthOptions", "switchableTo"} <= set(k3)
    emulator.configure(models=[{"scenario": "SCENARIO_X", "id": "x", "displayName": "X"}], casing="snake")
    status, body = await call(session, AVAILABLE_MODELS, account.access_token, {}, **{"X-Msh-Version": "2.0.0"})
    assert body == {
        "available_models": [{"scenario": "SCENARIO_X", "id": "x", "display_name": "X"}],
        "default_scenario": {"scenario": "SCENARIO_X", "model": "x"},
    }


async def test_the_stale_bucket_without_a_version(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    status, body = await call(session, AVAILABLE_MODELS, account.access_token, {})
    assert status == 200
    assert body["availableModels"] == emulator.config.legacy_models
    assert body["defaultScenario"] == {"scenario": "SCENARIO_K2D5", "thinking": False}
    emulator.configure(catalog_shape="legacy")
    status, body = await call(session, AVAILABLE_MODELS, account.access_token, {}, **{"X-Msh-Version": "2.0.0"})
    assert body["availableModels"] == emulator.config.legacy_models


async def test_subscription_checks_the_token(session: aiohttp.ClientSession, account: Account) -> None:
    status, body = await call(session, SUBSCRIPTION, account.access_token, {})
    assert status == 200 and body["subscription"]["userId"] == account.user_id
    status, body = await call(session, SUBSCRIPTION, "nope", {})
    assert (status, body["code"]) == (401, "unauthenticated")


async def test_unary_body_must_be_a_json_object(session: aiohttp.ClientSession, account: Account) -> None:
    headers = {"Authorization": f"Bearer {account.access_token}", "Content-Type": "application/json"}
    async with session.post(LIST_CHATS, data=b"[1, 2]", headers=headers) as response:
        assert response.status == 400
        assert (await response.json())["code"] == "invalid_argument"


async def _rest_refresh(session: aiohttp.ClientSession, token: str) -> tuple[int, dict[str, str]]:
    async with session.get(REST_REFRESH, headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status, await response.json()


async def test_rest_refresh(session: aiohttp.ClientSession, account: Account, emulator: Emulator) -> None:
    emulator.configure(rotate_refresh_tokens=False)
    for _ in range(2):  # without rotation the same refresh token works again and again
        status, body = await _rest_refresh(session, account.refresh_token)
        assert status == 200
        assert body["refresh_token"] == account.refresh_token
        assert (await call(session, SUBSCRIPTION, body["access_token"], {}))[0] == 200
    status, body = await _rest_refresh(session, account.access_token)
    assert status == 401
    assert body["error_type"] == "REASON_INVALID_AUTH_TOKEN"
    assert emulator.state.refreshes == 2
    assert emulator.state.requests["refresh"] == 3


async def test_connect_refresh_rotates_both_tokens(session: aiohttp.ClientSession, account: Account) -> None:
    status, body = await call(session, CONNECT_REFRESH, "", {"refresh_token": account.refresh_token})
    assert status == 200 and body["refreshToken"] != account.refresh_token
    assert (await chat(session, body["accessToken"])).status == 200
    status, used = await call(session, CONNECT_REFRESH, "", {"refresh_token": account.refresh_token})
    assert (status, used["code"]) == (401, "unauthenticated"), "the used refresh token is revoked"
    status, again = await call(session, CONNECT_REFRESH, "", {"refresh_token": body["refreshToken"]})
    assert status == 200 and again["refreshToken"] not in (body["refreshToken"], account.refresh_token)
    status, body = await call(session, CONNECT_REFRESH, "", {"refreshToken": "unknown"})
    assert (status, body["code"]) == (401, "unauthenticated")
    status, body = await call(session, CONNECT_REFRESH, "", {})
    assert (status, body["code"]) == (400, "invalid_argument")


@pytest.mark.parametrize("served", ["connect", "rest"])
async def test_a_refresh_endpoint_can_be_retired(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator, served: str
) -> None:
    emulator.configure(refresh_endpoints=served)
    rest = await _rest_refresh(session, account.refresh_token)
    connect = await call(session, CONNECT_REFRESH, "", {"refresh_token": account.refresh_token})
    statuses = {"rest": rest[0], "connect": connect[0]}
    assert statuses == {served: 200, ({"rest", "connect"} - {served}).pop(): 404}


@pytest.mark.parametrize(("kind", "status"), [("unauthenticated", 401), ("rate_limited", 429), ("unavailable", 503)])
async def test_refresh_faults(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator, kind: str, status: int
) -> None:
    emulator.add_fault(Fault(kind=kind, endpoint="refresh", times=2))
    assert (await _rest_refresh(session, account.refresh_token))[0] == status
    connect_status, body = await call(session, CONNECT_REFRESH, "", {"refresh_token": account.refresh_token})
    assert connect_status == status and "code" in body
    assert (await _rest_refresh(session, account.refresh_token))[0] == 200
    assert emulator.state.refreshes == 1


async def test_open_accounts_refresh_any_token(session: aiohttp.ClientSession, emulator: Emulator) -> None:
    emulator.configure(open_accounts=True)
    status, body = await _rest_refresh(session, "whatever-refresh")
    assert status == 200 and body["refresh_token"] == "whatever-refresh"
    first = (await chat(session, body["access_token"])).chat_id()
    again = await _rest_refresh(session, "whatever-refresh")
    assert (await chat(session, again[1]["access_token"], chat_body(chat_id=first))).status == 200, "same user"


async def test_revoked_access_tokens_are_refused_before_they_expire(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    emulator.revoke_access_tokens(account.user_id)
    status, body = await call(session, SUBSCRIPTION, account.access_token, {})
    assert (status, body["code"]) == (401, "unauthenticated")
    status, fresh = await call(session, CONNECT_REFRESH, "", {"refresh_token": account.refresh_token})
    assert status == 200, "the refresh token still works"
    assert (await call(session, SUBSCRIPTION, fresh["accessToken"], {}))[0] == 200
    other = emulator.create_account("other")
    assert (await call(session, SUBSCRIPTION, other.access_token, {}))[0] == 200, "only that user's tokens"

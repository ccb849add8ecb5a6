"""The `/_emulator/*` control surface."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from kimi_free_api.emulator import Emulator, EmulatorConfig

from .client import chat, chat_body


async def _json(response: aiohttp.ClientResponse) -> tuple[int, Any]:
    return response.status, await response.json()


async def test_accounts(session: aiohttp.ClientSession, emulator: Emulator) -> None:
    status, account = await _json(await session.post("/_emulator/accounts", json={"name": "carol"}))
    assert status == 200
    assert set(account) == {"user_id", "refresh_token", "access_token", "name"}
    assert account["name"] == "carol"
    assert account["user_id"] in emulator.state.accounts
    assert (await chat(session, account["access_token"])).status == 200
    status, anonymous = await _json(await session.post("/_emulator/accounts"))
    assert status == 200 and anonymous["name"] is None


async def test_state(session: aiohttp.ClientSession, emulator: Emulator) -> None:
    account = emulator.create_account()
    chat_id = (await chat(session, account.access_token, chat_body("hi"))).chat_id()
    status, state = await _json(await session.get("/_emulator/state"))
    assert status == 200
    assert state["live_chats"] == 1
    [listed] = state["chats"]
    assert (listed["id"], listed["owner"]) == (chat_id, account.user_id)
    assert [(m["role"], m["content"][:8]) for m in listed["messages"]] == [("user", "hi"), ("assistant", "Echo: hi")]
    assert state["requests"] == {
        "refresh": 0, "chat": 1, "delete": 0, "cancel": 0, "models": 0, "subscription": 0, "subscription_stats": 0,
        "list_chats": 0, "presign": 0, "upload": 0, "register": 0, "parse": 0,
    }  # fmt: skip
    assert state["active_streams"] == {account.user_id: 0}
    assert state["max_concurrent_streams"] == {account.user_id: 1}
    assert [state[k] for k in ("cancelled", "deleted", "disconnects", "refreshes")] == [0, 0, 0, 0]
    assert emulator.state["chats"] == state["chats"], "the in-process view answers the same keys"


async def test_requests(session: aiohttp.ClientSession, emulator: Emulator) -> None:
    account = emulator.create_account()
    await chat(session, account.access_token, chat_body("one"))
    await chat(session, account.access_token, chat_body("two", thinking=True))
    status, recorded = await _json(await session.get("/_emulator/requests"))
    assert status == 200
    assert recorded == [chat_body("one"), chat_body("two", thinking=True)]


async def test_config(session: aiohttp.ClientSession, emulator: Emulator) -> None:
    status, config = await _json(await session.post("/_emulator/config", json={"event_count": 3, "casing": "snake"}))
    assert status == 200
    assert config == EmulatorConfig(event_count=3, casing="snake", thinking_events=3, search_results=2).to_json()
    assert emulator.config.event_count == 3
    assert (await _json(await session.get("/_emulator/config")))[1] == config


@pytest.mark.parametrize(
    ("data", "param", "code"),
    [
        (b'{"event_count": -1}', "event_count", "invalid_value"),
        (b'{"thinking_style": "loud"}', "thinking_style", "invalid_value"),
        (b'{"no_such_key": 1}', "no_such_key", "invalid_value"),
        (b"{broken", None, "invalid_json"),
        (b"[]", None, "invalid_json"),
    ],
)
async def test_bad_config(
    session: aiohttp.ClientSession, emulator: Emulator, data: bytes, param: str | None, code: str
) -> None:
    before = emulator.config
    status, body = await _json(await session.post("/_emulator/config", data=data))
    assert status == 400
    assert body["error"]["param"] == param
    assert body["error"]["code"] == code
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"]
    assert emulator.config == before


async def test_faults(session: aiohttp.ClientSession, emulator: Emulator) -> None:
    account = emulator.create_account()
    status, body = await _json(await session.post("/_emulator/faults", json={"kind": "unavailable", "times": 2}))
    assert status == 200
    assert body["faults"][0]["kind"] == "unavailable" and body["faults"][0]["times_left"] == 2
    assert (await chat(session, account.access_token)).status == 503
    assert (await _json(await session.get("/_emulator/faults")))[1]["faults"][0]["times_left"] == 1
    assert (await _json(await session.delete("/_emulator/faults"))) == (200, {"faults": []})
    assert (await chat(session, account.access_token)).status == 200
    status, body = await _json(await session.post("/_emulator/faults", json={"kind": "teapot"}))
    assert (status, body["error"]["param"]) == (400, "kind")


async def test_reset(session: aiohttp.ClientSession, emulator: Emulator) -> None:
    account = emulator.create_account()
    await chat(session, account.access_token)
    emulator.configure(event_count=1)
    await session.post("/_emulator/faults", json={"kind": "internal"})
    status, state = await _json(await session.post("/_emulator/reset"))
    assert status == 200
    assert state["live_chats"] == 0 and state["requests"]["chat"] == 0
    assert emulator.config.event_count == 5, "back to the settings the emulator started with"
    assert (await _json(await session.get("/_emulator/requests")))[1] == []
    assert (await chat(session, account.access_token)).status == 200, "accounts and no faults survive"

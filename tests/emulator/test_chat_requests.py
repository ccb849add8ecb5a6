"""What the Chat call refuses before streaming, and how chats are created and continued."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest

from kimi_free_api.emulator import Account, Emulator
from kimi_free_api.emulator.answers import expected_answer
from kimi_free_api.emulator.framing import envelope

from .client import chat, chat_body


@pytest.mark.parametrize(
    ("headers", "status", "complaint"),
    [
        ({"Content-Type": "application/json"}, 415, "Content-Type"),
        ({"Connect-Protocol-Version": "2"}, 400, "Connect-Protocol-Version"),
    ],
)
async def test_protocol_headers_are_required(
    session: aiohttp.ClientSession, account: Account, headers: dict[str, str], status: int, complaint: str
) -> None:
    reply = await chat(session, account.access_token, headers=headers)
    assert reply.status == status
    assert reply.body["code"] == "invalid_argument"
    assert complaint in reply.body["message"]


async def test_bare_json_is_refused(session: aiohttp.ClientSession, account: Account, emulator: Emulator) -> None:
    reply = await chat(session, account.access_token, data=orjson.dumps(chat_body()))
    assert (reply.status, reply.body["code"]) == (400, "invalid_argument")
    assert emulator.state.live_chats == 0


@pytest.mark.parametrize("token", ["", "garbage", "eyJ.eyJ.sig"])
async def test_bad_bearer(session: aiohttp.ClientSession, token: str) -> None:
    reply = await chat(session, token)
    assert reply.status == 401
    assert reply.body["code"] == "unauthenticated"
    # The 2026 shape (S16): a plain message, the reason in `details[].debug`.
    assert reply.body["message"] == "invalid user token"
    (detail,) = reply.body["details"]
    assert detail["type"] == "common.error.v1.ErrorDetail"
    assert detail["debug"]["reason"] == "REASON_INVALID_AUTH_TOKEN"
    assert detail["debug"]["localizedMessage"]["message"] == "invalid user token"


async def test_refresh_token_is_no_access_token(session: aiohttp.ClientSession, account: Account) -> None:
    assert (await chat(session, account.refresh_token)).status == 401


async def test_expired_access_token(session: aiohttp.ClientSession, emulator: Emulator) -> None:
    emulator.configure(access_token_ttl_s=0)
    reply = await chat(session, emulator.create_account().access_token)
    assert reply.status == 401


@pytest.mark.parametrize("prompt", ["", "   \n"])
async def test_empty_prompt(session: aiohttp.ClientSession, account: Account, prompt: str) -> None:
    reply = await chat(session, account.access_token, chat_body(prompt))
    assert (reply.status, reply.body["code"]) == (400, "invalid_argument")


async def test_message_is_required(session: aiohttp.ClientSession, account: Account) -> None:
    reply = await chat(session, account.access_token, {"scenario": "SCENARIO_K2"})
    assert (reply.status, reply.body["code"]) == (400, "invalid_argument")


async def test_continuing_a_chat(session: aiohttp.ClientSession, account: Account, emulator: Emulator) -> None:
    first = await chat(session, account.access_token, chat_body("one"))
    chat_id = first.chat_id()
    second = await chat(session, account.access_token, chat_body("two", chat_id=chat_id))
    assert second.chat_id() == chat_id
    assert emulator.state.live_chats == 1
    messages = emulator.state.chats[chat_id].messages
    assert [(m.role, m.content) for m in messages] == [
        ("user", "one"),
        ("assistant", expected_answer("one", emulator.config)),
        ("user", "two"),
        ("assistant", expected_answer("two", emulator.config)),
    ]
    assert all(m.status == "MESSAGE_STATUS_COMPLETED" for m in messages)
    assert second.frames[1]["message"]["parentId"] == messages[1].id, "continues after the last answer"
    assert emulator.state.chat_requests[-1]["chat_id"] == chat_id


async def test_camel_case_request_keys(session: aiohttp.ClientSession, account: Account) -> None:
    first = await chat(session, account.access_token)
    body = chat_body()
    body["chatId"] = first.chat_id()
    body["message"]["parentId"] = "d3rglnb12h610c3cc300"
    second = await chat(session, account.access_token, body)
    assert second.chat_id() == first.chat_id()
    assert second.frames[1]["message"]["parentId"] == "d3rglnb12h610c3cc300"


async def test_unknown_or_foreign_chat_is_not_found(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    owned = (await chat(session, account.access_token)).chat_id()
    intruder = emulator.create_account("mallory")
    for token, chat_id in ((account.access_token, "d3rglnb12h610c3cc300"), (intruder.access_token, owned)):
        reply = await chat(session, token, chat_body(chat_id=chat_id))
        assert reply.status == 404
        assert reply.body["code"] == "not_found"
        assert reply.body["message"].startswith("chat.not_found: ")
    assert len(emulator.state.chats[owned].messages) == 2


async def test_open_accounts_take_any_bearer(session: aiohttp.ClientSession, emulator: Emulator) -> None:
    emulator.configure(open_accounts=True)
    first = await chat(session, "any string at all")
    again = await chat(session, "any string at all", chat_body(chat_id=first.chat_id()))
    other = await chat(session, "another string", chat_body(chat_id=first.chat_id()))
    assert (first.status, again.status, other.status) == (200, 200, 404)
    assert len(emulator.state.max_concurrent_streams) == 1


async def test_requests_are_recorded(session: aiohttp.ClientSession, account: Account, emulator: Emulator) -> None:
    body = chat_body("record me", search=True)
    await chat(session, account.access_token, body)
    await chat(session, "bad token", body)
    await chat(session, account.access_token, data=envelope(b"not json"))
    assert list(emulator.state.chat_requests) == [body, body]
    assert emulator.state.requests["chat"] == 3


def _selecting(model: str, scenario: str, effort: str | None) -> dict[str, Any]:
    body = chat_body("pick")
    body["scenario"] = scenario
    body["options"] = {"thinking": True, "model": model, **({"reasoning_effort": effort} if effort else {})}
    return body


@pytest.mark.parametrize(
    ("model", "scenario", "effort", "status"),
    [
        ("k3", "SCENARIO_K3", "REASONING_EFFORT_HIGH", 200),
        ("k3", "SCENARIO_K3", None, 200),
        ("k3", "SCENARIO_K3", "REASONING_EFFORT_NONE", 400),  # K3 rejects thinking off
        ("k3", "SCENARIO_CHAT", "REASONING_EFFORT_LOW", 400),  # not its scenario
        ("k2d6-chat", "SCENARIO_CHAT", "REASONING_EFFORT_NONE", 200),
        ("k9", "SCENARIO_K3", None, 400),
    ],
)
async def test_model_selection_is_validated_like_kimi(
    session: aiohttp.ClientSession, account: Account, model: str, scenario: str, effort: str | None, status: int
) -> None:
    reply = await chat(session, account.access_token, _selecting(model, scenario, effort))
    assert reply.status == status
    if status == 400:
        assert reply.body["code"] == "invalid_argument"


async def test_the_effort_level_decides_thinking(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    body = _selecting("k2d6-thinking", "SCENARIO_CHAT", "REASONING_EFFORT_NONE")
    reply = await chat(session, account.access_token, body)
    assert reply.status == 200
    assert not any("think" in str(f.get("mask", "")) for f in reply.frames), "NONE: no thinking, whatever thinking says"

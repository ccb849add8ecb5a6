"""Scripted answers: the test decides what the next Chat requests are answered with."""

from __future__ import annotations

from typing import Any

import aiohttp

from kimi_free_api.emulator import Emulator, Fault
from kimi_free_api.emulator.answers import expected_answer

from .client import chat, chat_body


def _answer(reply: Any) -> str:
    texts = reply.block_texts()
    return str(texts[max(texts)])


async def test_scripted_answers_are_used_in_order_then_the_echo_returns(emulator: Emulator) -> None:
    account = emulator.create_account()
    emulator.script(['<tool_call name="f">{"a": 1}</tool_call>', "第二个 answer 🙂"])
    async with aiohttp.ClientSession(base_url=emulator.base_url) as session:
        first = await chat(session, account.access_token, chat_body("one"))
        second = await chat(session, account.access_token, chat_body("two"))
        third = await chat(session, account.access_token, chat_body("three"))
    assert _answer(first) == '<tool_call name="f">{"a": 1}</tool_call>'
    assert _answer(second) == "第二个 answer 🙂"
    assert _answer(third) == expected_answer("three", emulator.config)
    # Like any answer, a scripted one arrives in event_count text frames and stays in the chat.
    appends = [op for op in first.ops if op.get("op") == "append" and op.get("mask") == "block.text.content"]
    assert len(appends) == emulator.config.event_count
    assert emulator.state.chats[first.chat_id()].messages[-1].content == '<tool_call name="f">{"a": 1}</tool_call>'
    assert emulator.scripted == []


async def test_short_scripted_answers_use_fewer_frames(emulator: Emulator) -> None:
    account = emulator.create_account()
    emulator.script(["ok"])
    async with aiohttp.ClientSession(base_url=emulator.base_url) as session:
        reply = await chat(session, account.access_token, chat_body("x"))
    appends = [op for op in reply.ops if op.get("op") == "append"]
    assert [op["block"]["text"]["content"] for op in appends] == ["o", "k"]


async def test_refused_requests_leave_the_script_alone(emulator: Emulator) -> None:
    account = emulator.create_account()
    emulator.script(["kept"])
    emulator.add_fault(Fault("unavailable"))
    async with aiohttp.ClientSession(base_url=emulator.base_url) as session:
        assert (await chat(session, account.access_token, chat_body("x"))).status == 503
        assert (await chat(session, "not-a-token", chat_body("x"))).status == 401
        assert emulator.scripted == ["kept"]
        assert _answer(await chat(session, account.access_token, chat_body("x"))) == "kept"


async def test_control_surface(session: aiohttp.ClientSession, emulator: Emulator) -> None:
    response = await session.post("/_emulator/script", json={"answers": ["a", "b"]})
    assert (response.status, await response.json()) == (200, {"answers": ["a", "b"]})
    response = await session.post("/_emulator/script", json={"answers": ["c"]})
    assert (await response.json())["answers"] == ["a", "b", "c"]
    assert await (await session.get("/_emulator/script")).json() == {"answers": ["a", "b", "c"]}
    assert await (await session.delete("/_emulator/script")).json() == {"answers": []}
    emulator.script(["d"])
    await session.post("/_emulator/reset")
    assert emulator.scripted == []


async def test_control_surface_refuses_bad_scripts(session: aiohttp.ClientSession, emulator: Emulator) -> None:
    for body in ({"answers": "a"}, {"answers": ["a", 1]}, {}):
        response = await session.post("/_emulator/script", json=body)
        assert response.status == 400
        assert (await response.json())["error"]["param"] == "answers"
    assert emulator.scripted == []

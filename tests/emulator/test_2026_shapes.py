"""The emulator's 2026 shapes (kimi-2026-evidence.md rows 28, 37, 48): block.exception, a research run parked on an
ask-user question, stray envelopes."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest

from kimi_free_api.emulator import Account, Emulator, Fault
from kimi_free_api.emulator.answers import answer_deltas, research_question
from kimi_free_api.emulator.framing import EnvelopeReader, envelope
from kimi_free_api.emulator.g3 import CANCEL_CHAT, CHAT

from .client import CONNECT_HEADERS, call, chat, chat_body, eventually


def _answer(frames: list[dict[str, Any]]) -> str:
    return "".join(f["block"]["text"]["content"] for f in frames if "text" in f.get("block", {}))


@pytest.mark.parametrize("after_events", [0, 2])
async def test_overloaded_is_a_block_exception_then_done(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator, after_events: int
) -> None:
    emulator.add_fault(Fault(kind="overloaded", after_events=after_events))
    reply = await chat(session, account.access_token, chat_body("busy"))
    *_, exception, done = reply.frames
    assert _answer(reply.frames) == "".join(answer_deltas("busy", emulator.config)[:after_events])
    assert exception["mask"] == "block.exception" and exception["op"] == "set"
    error = exception["block"]["exception"]["error"]
    assert error["reason"] == "REASON_COMPLETION_OVERLOADED" and error["severity"] == "SEVERITY_BLOCK_RETRACT"
    assert set(error["localizedMessage"]) == {"locale", "message"} and error["localizedMessage"]["message"]
    assert done == {"done": {}}


def _research_body(prompt: str) -> dict[str, Any]:
    body = chat_body(prompt, search=True)
    body.update(scenario="SCENARIO_OK_COMPUTER", kimiplus_id="deep-researcher")
    body["tools"].append({"type": "TOOL_TYPE_ASK_USER"})
    body["options"]["enable_plugin"] = True
    return body


async def test_a_research_run_parks_on_its_question_with_the_stream_open(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    headers = {**CONNECT_HEADERS, "Authorization": f"Bearer {account.access_token}"}
    frames: list[dict[str, Any]] = []
    async with session.post(CHAT, data=envelope(orjson.dumps(_research_body("tides"))), headers=headers) as response:
        reader = EnvelopeReader()
        async for chunk in response.content.iter_any():
            frames += [orjson.loads(message) for _, message in reader.feed(chunk)]
            if frames and frames[-1].get("mask") == "chat.status":
                break
        tool_set = next(f for f in frames if f.get("mask") == "block.tool")
        assert tool_set["block"]["tool"]["name"] == "ask_user"
        args = "".join(f["block"]["tool"]["args"] for f in frames if f.get("mask") == "block.tool.args")
        assert orjson.loads(args) == research_question("tides")
        assert frames[-1]["chat"]["status"] == "STATUS_ASK_USER_QUESTION"
        assert not any("done" in f for f in frames)
        # Parked is not generating: the account may start another answer while this one waits.
        assert (await chat(session, account.access_token, chat_body("meanwhile"))).status == 200
        chat_id = frames[0]["chat"]["id"]
        status, _ = await call(session, CANCEL_CHAT, account.access_token, {"chat_id": chat_id})
        assert status == 200
        assert await response.content.read() == b""  # CancelChat ends the parked stream
    assert emulator.state.cancelled == 1
    await eventually(lambda: emulator.state.active_streams[account.user_id] == 0)


async def test_research_without_asking_plays_to_the_end(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    emulator.configure(research_asks_user=False)
    reply = await chat(session, account.access_token, _research_body("tides"))
    assert reply.frames[-1] == {"done": {}}
    assert not any(f.get("mask") == "block.tool" and f["block"]["tool"]["name"] == "ask_user" for f in reply.ops)


async def test_stray_envelopes_follow_the_preamble(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    emulator.configure(stray_envelopes=True)
    reply = await chat(session, account.access_token, chat_body("junk"))
    data = [message for flags, message in reply.envelopes if flags == 0]
    assert data[3:5] == [b"", b"\x00 not json"]

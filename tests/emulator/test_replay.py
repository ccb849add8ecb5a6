"""Replay mode: the emulator answers with the shapes of a recorded trace, filled with its own text and ids."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from kimi_free_api.emulator import Account, Emulator
from kimi_free_api.emulator.config import InvalidSetting
from kimi_free_api.emulator.g3 import AVAILABLE_MODELS, CANCEL_CHAT, DELETE_CHAT
from kimi_free_api.emulator.replay import Filler, TraceError, load_trace

from .client import call, chat, chat_body, eventually

HEADER = {"kind": "trace", "format": "kimi-free-api-trace/1"}
S = "str"


def _block(op: str, kind: str, content: dict[str, Any]) -> dict[str, Any]:
    """A block frame's shape: `set` frames name the parent message, `append` frames do not."""
    block = {"id": S, "parentId": S, **content} if op == "set" else {"id": S, **content}
    mask = f"block.{kind}" if op == "set" else f"block.{kind}.content"
    return {"eventOffset": "num", "mask": mask, "op": op, "block": block}


STAGE = {"stages": [{"name": "STAGE_NAME_THINKING", "status": "STAGE_STATUS_START"}]}
# A thinking answer in the 2026 shape (a START/END stage around a think block), as a trace holds it.
THINKING = [
    {"chat": {"id": S, "name": S, "createTime": S}, "eventOffset": "num", "op": "set"},
    {"eventOffset": "num", "mask": "message", "op": "set",
     "message": {"id": S, "parentId": S, "role": "user", "status": "MESSAGE_STATUS_COMPLETED",
                 "blocks": [{"id": S, "parentId": S, "text": {"content": S}}]}},
    {"eventOffset": "num", "mask": "message", "op": "set",
     "message": {"id": S, "parentId": S, "role": "assistant", "status": "MESSAGE_STATUS_GENERATING", "blocks": []}},
    {"eventOffset": "num", "mask": "block.multiStage", "op": "set",
     "block": {"id": S, "parentId": S, "multiStage": STAGE}},
    _block("set", "think", {"think": {"content": S}}),
    _block("append", "think", {"think": {"content": S}}),
    _block("set", "text", {"text": {"content": S}}),
    _block("append", "text", {"text": {"content": S}}),
    _block("append", "text", {"text": {"content": S}}),
    {"eventOffset": "num", "mask": "message.status", "op": "set",
     "message": {"id": S, "status": "MESSAGE_STATUS_COMPLETED"}},
    {"done": {}, "eventOffset": "num"},
]  # fmt: skip


def _write(path: Path, lines: list[dict[str, Any]]) -> str:
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return str(path)


def _stream(step: str, frames: list[Any], *, end: bool = True) -> list[dict[str, Any]]:
    lines = [{"kind": "request", "step": step, "call": "Chat", "shape": {}}]
    lines += [{"kind": "frame", "step": step, "shape": shape} for shape in frames]
    return lines + ([{"kind": "end", "step": step, "flags": 2, "shape": {}}] if end else [])


async def test_a_recorded_stream_is_replayed_with_the_emulators_own_ids(
    emulator: Emulator, account: Account, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    emulator.configure(replay=_write(tmp_path / "t.jsonl", [HEADER, *_stream("thinking", THINKING)]))
    reply = await chat(session, account.access_token, chat_body("hi", thinking=True))
    assert reply.status == 200
    frames = reply.frames
    ops = [frame for frame in frames if "op" in frame]
    for frame, shape in zip(frames, THINKING, strict=True):
        assert set(frame) == set(shape)
    assert [frame.get("mask") for frame in frames] == [shape.get("mask") for shape in THINKING]
    assert [frame["eventOffset"] for frame in frames] == list(range(1, len(frames) + 1))
    chat_id = reply.chat_id()
    assert chat_id in emulator.state.chats
    [question, answer] = emulator.state.chats[chat_id].messages
    assert frames[1]["message"]["id"] == question.id and frames[2]["message"]["id"] == answer.id
    assert frames[2]["message"]["parentId"] == question.id
    # A block's appends land on the block its set opened, and every block is the reply's.
    think, text = ops[4]["block"]["id"], ops[6]["block"]["id"]
    assert ops[5]["block"]["id"] == think and ops[7]["block"]["id"] == ops[8]["block"]["id"] == text
    assert len({ops[3]["block"]["id"], think, text}) == 3
    assert {frame["block"]["parentId"] for frame in ops if "parentId" in frame.get("block", {})} == {answer.id}
    assert ops[3]["block"]["multiStage"]["stages"][0]["status"] == "STAGE_STATUS_START"
    assert reply.block_texts()[text].strip()
    assert reply.end == (2, b"{}")
    status, _ = await call(session, DELETE_CHAT, account.access_token, {"chat_id": chat_id})
    assert status == 200


async def test_the_matching_step_answers(
    emulator: Emulator, account: Account, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    plain = [shape for shape in THINKING if "think" not in orjson.dumps(shape).decode().lower()]
    trace = [HEADER, *_stream("thinking", THINKING), *_stream("plain", plain, end=False)]
    emulator.configure(replay=_write(tmp_path / "t.jsonl", trace))
    reply = await chat(session, account.access_token, chat_body("hi"))
    assert [frame.get("mask") for frame in reply.frames] == [shape.get("mask") for shape in plain]
    assert reply.end is None  # none was recorded
    thinking = await chat(session, account.access_token, chat_body("hi", thinking=True))
    assert [frame.get("mask") for frame in thinking.frames] == [shape.get("mask") for shape in THINKING]


async def test_cancel_stops_the_replayed_text_but_not_the_end(
    emulator: Emulator, account: Account, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    long = [*THINKING[:7], *[_block("append", "text", {"text": {"content": S}})] * 20, *THINKING[9:]]
    emulator.configure(replay=_write(tmp_path / "t.jsonl", [HEADER, *_stream("plain", long)]), event_delay_ms=50)
    answer = asyncio.create_task(chat(session, account.access_token, chat_body("hi")))
    await eventually(lambda: any(chat.generation for chat in emulator.state.chats.values()))
    [chat_id] = emulator.state.chats
    assert (await call(session, CANCEL_CHAT, account.access_token, {"chat_id": chat_id}))[0] == 200
    reply = await answer
    appends = [frame for frame in reply.frames if frame.get("op") == "append"]
    assert 0 < len(appends) < 20
    assert reply.frames[-2]["mask"] == "message.status" and reply.frames[-1]["done"] == {}
    assert emulator.state.cancelled == 1


async def test_a_refused_call_and_the_catalog_are_replayed(
    emulator: Emulator, account: Account, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    catalog = {
        "availableModels": [{"id": S, "scenario": "SCENARIO_K3", "reasoningEffortOptions": ["REASONING_EFFORT_LOW"]}]
    }
    trace: list[dict[str, Any]] = [
        HEADER,
        {"kind": "answer", "step": "catalog", "call": "GetAvailableModels", "status": 200, "shape": catalog},
        {"kind": "request", "step": "plain", "call": "Chat", "shape": {}},
        {"kind": "answer", "step": "plain", "call": "Chat", "status": 429,
         "shape": {"code": "resource_exhausted", "message": S}},
    ]  # fmt: skip
    emulator.configure(replay=_write(tmp_path / "t.jsonl", trace))
    status, models = await call(session, AVAILABLE_MODELS, account.access_token, {})
    assert status == 200
    assert models["availableModels"][0]["scenario"] == "SCENARIO_K3"
    assert models["availableModels"][0]["reasoningEffortOptions"] == ["REASONING_EFFORT_LOW"]
    assert isinstance(models["availableModels"][0]["id"], str)
    reply = await chat(session, account.access_token, chat_body("hi"))
    assert reply.status == 429
    assert reply.body["code"] == "resource_exhausted"


def test_a_gateway_trace_is_split_at_each_chat_frame(tmp_path: Path) -> None:
    frames = [{"kind": "frame", "shape": shape} for shape in THINKING]
    trace = load_trace(_write(tmp_path / "t.jsonl", [HEADER, *frames, *frames, {"kind": "verdict", "check": "x"}]))
    assert [len(stream.frames) for stream in trace.streams] == [len(THINKING)] * 2
    assert trace.pick(thinking=False, search=False, files=False) is trace.streams[0]
    assert trace.pick(thinking=False, search=False, files=False) is trace.streams[1]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([{"kind": "frame", "shape": {}}], "not a kimi-free-api trace"),
        ([{"kind": "trace", "format": "other/9"}], "unknown trace format"),
        ([HEADER], "holds no Chat stream"),
    ],
)
def test_files_that_are_not_replayable_traces_are_refused(
    tmp_path: Path, lines: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(TraceError, match=message):
        load_trace(_write(tmp_path / "t.jsonl", lines))


def test_the_replay_setting_is_checked(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(InvalidSetting, match="line 1 of the trace is not JSON") as caught:
        Emulator().configure(replay=str(tmp_path / "bad.jsonl"))
    assert caught.value.param == "replay"
    with pytest.raises(InvalidSetting, match="cannot read the trace"):
        Emulator().configure(replay=str(tmp_path / "missing.jsonl"))


async def test_the_control_api_names_a_bad_replay_setting(session: aiohttp.ClientSession, tmp_path: Path) -> None:
    async with session.post("/_emulator/config", json={"replay": str(tmp_path / "missing.jsonl")}) as response:
        assert response.status == 400
        assert (await response.json())["error"]["param"] == "replay"


def test_a_snake_cased_trace_keeps_its_casing_and_its_ties() -> None:
    filler = Filler("chat-1", "question-1", "reply-1")
    block = {"id": S, "parent_id": S, "text": {"content": S}}
    frame = filler.frame({"op": "set", "mask": "block.text", "event_offset": "num", "block": block}, 7)
    assert frame["event_offset"] == 7
    assert frame["block"]["parent_id"] == "reply-1" and "parentId" not in frame["block"]
    append = filler.frame({"op": "append", "mask": "block.text.content", "block": {"id": S, "text": {"content": S}}}, 8)
    assert append["block"]["id"] == frame["block"]["id"]

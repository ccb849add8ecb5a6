"""The Chat stream, frame by frame, in each of the variants the protocol document leaves open."""

from __future__ import annotations

import itertools
import re

import aiohttp
import orjson
import pytest

from kimi_free_api.emulator import Account, Emulator
from kimi_free_api.emulator.answers import expected_answer, expected_thinking, search_hits, wire_answer
from kimi_free_api.emulator.framing import FLAG_END_STREAM, FLAG_TRAILER

from .client import chat, chat_body

XID = re.compile(r"^[0-9a-v]{20}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


async def test_plain_reply_in_order(session: aiohttp.ClientSession, account: Account, emulator: Emulator) -> None:
    reply = await chat(session, account.access_token, chat_body("What is 2+2?"))
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/connect+json"
    frames = reply.frames
    chat_frame, user, assistant, answer_set, *appends, status, done = frames
    assert chat_frame["op"] == "set" and chat_frame["eventOffset"] == 1
    assert UUID.match(chat_frame["chat"]["id"]), "chats get UUID-style ids, as Kimi mints them since late 2025"
    assert set(chat_frame["chat"]) == {"id", "name", "createTime", "updateTime"}

    assert user["mask"] == "message" and user["message"]["role"] == "user"
    assert user["message"]["status"] == "MESSAGE_STATUS_COMPLETED"
    assert user["message"]["blocks"][0]["text"]["content"] == (
        "<contextual_request><system_instruction></system_instruction><chat_history/>"
        "<current_user_query>What is 2+2?</current_user_query></contextual_request>"
    )
    assert assistant["message"]["role"] == "assistant"
    assert assistant["message"]["status"] == "MESSAGE_STATUS_GENERATING"
    assert assistant["message"]["parentId"] == user["message"]["id"]
    assert all(XID.match(f["message"]["id"]) for f in (user, assistant))

    assert (answer_set["op"], answer_set["mask"], answer_set["block"]["text"]["content"]) == ("set", "block.text", "")
    assert len(appends) == emulator.config.event_count
    assert {(f["op"], f["mask"]) for f in appends} == {("append", "block.text.content")}
    assert all(f["block"]["text"]["content"] for f in appends)
    assert "".join(f["block"]["text"]["content"] for f in appends) == expected_answer("What is 2+2?", emulator.config)

    assert status["mask"] == "message.status"
    assert status["message"] == {"id": assistant["message"]["id"], "status": "MESSAGE_STATUS_COMPLETED"}
    assert done == {"done": {}}
    offsets = [f["eventOffset"] for f in reply.ops]
    assert offsets == list(range(1, len(offsets) + 1))
    assert reply.end == (FLAG_END_STREAM, b"{}")
    assert reply.leftover == 0


async def test_cumulative_appends_carry_the_text_so_far(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    emulator.configure(append_mode="cumulative", thinking_style="think_block")
    reply = await chat(session, account.access_token, chat_body("grow", thinking=True))
    thinking_text = [f["block"]["think"]["content"] for f in reply.ops if f.get("mask") == "block.think.content"]
    answer_text = [f["block"]["text"]["content"] for f in reply.ops if f.get("mask") == "block.text.content"]
    for pieces, whole in (
        (thinking_text, expected_thinking("grow", emulator.config)),
        (answer_text, expected_answer("grow", emulator.config)),
    ):
        assert pieces[-1] == whole
        assert all(later.startswith(earlier) and later != earlier for earlier, later in itertools.pairwise(pieces))


@pytest.mark.parametrize(
    ("style", "end"),
    [
        ("connect", (FLAG_END_STREAM, b"{}")),
        ("grpc-web", (FLAG_TRAILER, b"grpc-status: 0\r\n")),
        ("none", None),
    ],
)
async def test_end_stream_styles(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator, style: str, end: tuple[int, bytes] | None
) -> None:
    emulator.configure(end_stream=style)
    reply = await chat(session, account.access_token)
    assert reply.frames[-1] == {"done": {}}
    assert reply.end == end
    assert len(reply.envelopes) == len(reply.frames) + (end is not None)


@pytest.mark.parametrize("style", ["think_stage", "think_block", "text_flags", "stage"])
async def test_thinking_styles(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator, style: str
) -> None:
    if style != "think_stage":
        emulator.configure(thinking_style=style, stage_statuses="running_completed")
    reply = await chat(session, account.access_token, chat_body("ponder", thinking=True))
    ops = reply.ops
    texts = reply.block_texts()
    answer_id = ops[-2 - emulator.config.event_count]["block"]["id"]
    thinking_ids = [block_id for block_id in texts if block_id != answer_id]
    assert len(thinking_ids) == 1
    assert texts[thinking_ids[0]] == expected_thinking("ponder", emulator.config)
    assert texts[answer_id] == expected_answer("ponder", emulator.config)
    masks = [f["mask"] for f in ops[3:]]
    thinking = emulator.config.thinking_events
    if style == "think_block":
        assert masks[: 1 + thinking] == ["block.think"] + ["block.think.content"] * thinking
    elif style == "text_flags":
        assert ops[3]["block"]["text"] == {"content": "", "flags": "thinking"}
        assert ops[4 + thinking]["block"]["text"] == {"content": "", "flags": "answer"}
    else:
        stages = [f["block"]["multiStage"]["stages"] for f in ops if f.get("mask") == "block.multiStage"]
        assert {s[0]["name"] for s in stages} == {"STAGE_NAME_THINKING"}
        assert masks[0] == "block.multiStage" and masks[2 + thinking] == "block.multiStage"
        if style == "stage":
            assert [s[0]["status"] for s in stages] == ["STAGE_STATUS_RUNNING", "STAGE_STATUS_COMPLETED"]
            assert "flags" not in ops[4]["block"]["text"]
        else:
            # The default follows the 2026 captures (evidence row 42): START, the think block, END, the answer.
            assert [s[0]["status"] for s in stages] == ["STAGE_STATUS_START", "STAGE_STATUS_END"]
            assert masks[1 : 2 + thinking] == ["block.think"] + ["block.think.content"] * thinking


async def test_no_thinking_unless_asked(session: aiohttp.ClientSession, account: Account) -> None:
    reply = await chat(session, account.access_token, chat_body("quick"))
    assert len(reply.block_texts()) == 1


async def test_web_pages_search(session: aiohttp.ClientSession, account: Account, emulator: Emulator) -> None:
    reply = await chat(session, account.access_token, chat_body("news", search=True))
    [search] = [f for f in reply.ops if f.get("mask") == "block.search.webPages"]
    pages = search["block"]["search"]["webPages"]
    hits = search_hits("news", emulator.config)
    assert [(p["title"], p["url"], p["siteName"], p["snippet"]) for p in pages] == [
        (h.title, h.url, h.site_name, h.snippet) for h in hits
    ]
    assert len(pages) == emulator.config.search_results
    assert all(re.match(r"^https://example\.(com|org|net)/", p["url"]) for p in pages)


async def test_tool_search(session: aiohttp.ClientSession, account: Account, emulator: Emulator) -> None:
    emulator.configure(search_style="tool")
    reply = await chat(session, account.access_token, chat_body("news", search=True))
    running, args, contents, chunks = [
        f for f in reply.ops if "tool" in f.get("block", {}) or "refs" in f.get("message", {})
    ]
    assert (running["mask"], running["block"]["tool"]["name"]) == ("block.tool", "$web_search")
    assert running["block"]["tool"]["status"] == "TOOL_STATUS_RUNNING" and running["block"]["tool"]["toolCallId"]
    assert (args["op"], args["mask"]) == ("append", "block.tool.args")
    assert orjson.loads(args["block"]["tool"]["args"]) == {"queries": ["news"]}
    assert contents["mask"] == "block.tool.contents"
    assert contents["block"]["tool"]["status"] == "TOOL_STATUS_COMPLETED"
    results = contents["block"]["tool"]["contents"]
    assert [r["searchResult"]["base"]["url"] for r in results] == [h.url for h in search_hits("news", emulator.config)]
    assert [r["searchResult"]["refIndex"] for r in results] == [1, 2]
    assert chunks["mask"] == "message.refs.searchChunks"
    assert chunks["message"]["refs"]["searchChunks"] == results


async def test_citation_markers_follow_search(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    emulator.configure(event_count=30)
    searched = await chat(session, account.access_token, chat_body("cite", search=True))
    answer = list(searched.block_texts().values())[-1]
    assert answer == wire_answer("cite", emulator.config, search=True)
    assert "\ue3a0cite\ue3a3web_search:1#1\ue3a8" in answer
    plain = await chat(session, account.access_token, chat_body("cite"))
    assert not re.search("[\ue000-\uf8ff]", list(plain.block_texts().values())[-1])


async def test_snake_casing(session: aiohttp.ClientSession, account: Account, emulator: Emulator) -> None:
    emulator.configure(casing="snake", search_style="tool")
    reply = await chat(session, account.access_token, chat_body("snakes", search=True))
    keys: set[str] = set()

    def collect(value: object) -> None:
        if isinstance(value, dict):
            keys.update(value)
            for item in value.values():
                collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)

    collect(reply.frames)
    assert {"event_offset", "create_time", "parent_id", "tool_call_id", "search_result", "ref_index"} <= keys
    assert not any(re.search("[A-Z]", key) for key in keys)
    assert "message.refs.search_chunks" in {f.get("mask") for f in reply.ops}
    emulator.configure(search_style="web_pages")
    pages = await chat(session, account.access_token, chat_body("snakes", search=True))
    [search] = [f for f in pages.ops if f.get("mask") == "block.search.web_pages"]
    assert search["block"]["search"]["web_pages"][0]["site_name"]


async def test_split_utf8_cuts_inside_characters(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    emulator.configure(split_utf8=True)
    reply = await chat(session, account.access_token, chat_body("你好"))
    assert "".join(f["block"]["text"]["content"] for f in reply.ops[4:-1]) == expected_answer("你好", emulator.config)
    cut_inside = [c for c in reply.chunks if c[-1] & 0xC0 == 0x80 or c[-1] >= 0xC0]
    assert cut_inside, "some read ends in the middle of a multi-byte character"
    assert len(reply.chunks) > len(reply.envelopes)


async def test_heartbeats_fill_long_silences(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    emulator.configure(event_count=2, first_event_delay_ms=60, heartbeat_ms=25)
    reply = await chat(session, account.access_token)
    frames = reply.frames
    assert frames[:2] == [{"heartbeat": {}}, {"heartbeat": {}}]
    assert "chat" in frames[2]
    assert {"heartbeat": {}} not in frames[3:]


async def test_prompt_from_every_text_block(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    body = chat_body()
    body["message"]["blocks"] = [{"text": {"content": "first"}}, {"image": {}}, {"text": {"content": "second"}}]
    reply = await chat(session, account.access_token, body)
    assert list(reply.block_texts().values())[-1] == expected_answer("first\nsecond", emulator.config)


async def test_xid_chat_ids_behind_a_setting(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    emulator.configure(chat_id_style="xid")
    reply = await chat(session, account.access_token, chat_body("old style"))
    chat_id = reply.frames[0]["chat"]["id"]
    assert XID.match(chat_id)
    assert (await chat(session, account.access_token, chat_body("again", chat_id=chat_id))).status == 200

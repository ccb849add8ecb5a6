"""Every fault kind, as a client of the emulator sees it."""

from __future__ import annotations

import asyncio
from typing import NamedTuple

import aiohttp
import orjson
import pytest

from kimi_free_api.emulator import Account, Emulator, Fault
from kimi_free_api.emulator.answers import answer_deltas
from kimi_free_api.emulator.framing import FLAG_END_STREAM, FLAG_TRAILER, envelope
from kimi_free_api.emulator.g3 import CHAT

from .client import CONNECT_HEADERS, chat, chat_body, eventually


class Refusal(NamedTuple):
    status: int
    code: str
    reason: str | None = None
    retry_after: str | None = None


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault(kind="unauthenticated"), Refusal(401, "unauthenticated", "REASON_INVALID_AUTH_TOKEN")),
        (Fault(kind="rate_limited"), Refusal(429, "resource_exhausted", retry_after="1")),
        (Fault(kind="rate_limited", retry_after=7), Refusal(429, "resource_exhausted", retry_after="7")),
        (Fault(kind="quota"), Refusal(429, "resource_exhausted", "usage.limit_reached")),
        (Fault(kind="unavailable"), Refusal(503, "unavailable")),
        (Fault(kind="internal"), Refusal(500, "internal")),
        (Fault(kind="busy"), Refusal(429, "resource_exhausted", "chat.user_stream_pushing")),
        (Fault(kind="not_found"), Refusal(404, "not_found", "chat.not_found")),
    ],
)
async def test_refusals_before_the_stream(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator, fault: Fault, expected: Refusal
) -> None:
    emulator.add_fault(fault)
    reply = await chat(session, account.access_token)
    assert reply.status == expected.status
    assert reply.headers.get("Retry-After") == expected.retry_after
    assert reply.body["code"] == expected.code
    if expected.reason and expected.reason.startswith("REASON_"):
        assert reply.body["details"][0]["debug"]["reason"] == expected.reason
    elif expected.reason:
        assert reply.body["message"].startswith(f"{expected.reason}: ")
        assert reply.body["details"] == [{"type": "kimi.reason", "value": expected.reason}]
    else:
        assert "details" not in reply.body
    assert emulator.state.live_chats == 0
    assert (await chat(session, account.access_token)).status == 200, "the fault applied once"


async def test_quota_message_mentions_the_usage_limit(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    emulator.add_fault(Fault(kind="quota"))
    assert "usage limit" in (await chat(session, account.access_token)).body["message"]


async def test_bad_gateway_is_html(session: aiohttp.ClientSession, account: Account, emulator: Emulator) -> None:
    emulator.add_fault(Fault(kind="bad_gateway"))
    reply = await chat(session, account.access_token)
    assert reply.status == 502
    assert reply.headers["Content-Type"].startswith("text/html")
    assert "<h1>502 Bad Gateway</h1>" in reply.body


async def test_faults_match_times_and_user(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    bob = emulator.create_account("bob")
    emulator.add_fault(Fault(kind="unavailable", times=2, user_id=bob.user_id))
    assert (await chat(session, account.access_token)).status == 200
    assert [(await chat(session, bob.access_token)).status for _ in range(3)] == [503, 503, 200]


async def test_custom_message(session: aiohttp.ClientSession, account: Account, emulator: Emulator) -> None:
    emulator.add_fault(Fault(kind="busy", message="someone else is typing"))
    reply = await chat(session, account.access_token)
    assert reply.body["message"] == "chat.user_stream_pushing: someone else is typing"


def _answer_text(frames: list[dict[str, object]]) -> str:
    return "".join(
        f["block"]["text"]["content"]  # type: ignore[index]
        for f in frames
        if f.get("mask") == "block.text.content"
    )


@pytest.mark.parametrize(
    "case",
    [("stream_error", "internal", None), ("content_filter", "permission_denied", "chat.forbidden")],
)
@pytest.mark.parametrize("end_stream", ["connect", "grpc-web", "none"])
async def test_errors_inside_the_stream_as_a_frame(
    session: aiohttp.ClientSession,
    account: Account,
    emulator: Emulator,
    case: tuple[str, str, str | None],
    end_stream: str,
) -> None:
    kind, code, reason = case
    emulator.configure(end_stream=end_stream)
    emulator.add_fault(Fault(kind=kind, after_events=2))
    reply = await chat(session, account.access_token, chat_body("oops"))
    assert reply.status == 200
    frames = reply.frames
    assert _answer_text(frames) == "".join(answer_deltas("oops", emulator.config)[:2])
    error = frames[-1]["error"]
    assert error["code"] == code
    if reason:
        assert error["message"].startswith(reason) and error["details"][0]["value"] == reason
    assert not any("done" in f for f in frames)
    expected_end = {"connect": (FLAG_END_STREAM, b"{}"), "grpc-web": (FLAG_TRAILER, b"grpc-status: 0\r\n")}
    assert reply.end == expected_end.get(end_stream)


@pytest.mark.parametrize("kind", ["stream_error", "content_filter"])
async def test_errors_inside_the_stream_as_a_trailer(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator, kind: str
) -> None:
    emulator.configure(error_style="trailer")
    emulator.add_fault(Fault(kind=kind, after_events=1, message="nope"))
    reply = await chat(session, account.access_token)
    assert not any("error" in f or "done" in f for f in reply.frames)
    assert reply.end is not None and reply.end[0] == FLAG_END_STREAM
    trailer = orjson.loads(reply.end[1])
    assert trailer["error"]["message"].endswith("nope")
    emulator.configure(end_stream="grpc-web")
    emulator.add_fault(Fault(kind=kind, message="nope"))
    grpc = await chat(session, account.access_token)
    assert grpc.end is not None and grpc.end[1].startswith(b"grpc-status: ")
    assert b"grpc-message: " in grpc.end[1] and b"nope" in grpc.end[1]


async def test_error_after_the_last_frame_when_after_events_is_large(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    emulator.add_fault(Fault(kind="stream_error", after_events=99))
    reply = await chat(session, account.access_token, chat_body("all"))
    assert _answer_text(reply.frames) == "".join(answer_deltas("all", emulator.config))
    assert "error" in reply.frames[-1]


async def test_disconnect_cuts_the_connection_after_some_frames(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    emulator.add_fault(Fault(kind="disconnect", after_events=3))
    received = b""
    headers = {**CONNECT_HEADERS, "Authorization": f"Bearer {account.access_token}"}
    with pytest.raises(aiohttp.ClientPayloadError):
        async with session.post(CHAT, data=envelope(orjson.dumps(chat_body())), headers=headers) as response:
            async for chunk in response.content.iter_any():
                received += chunk
    assert received.count(b"block.text.content") == 3
    assert b'"done"' not in received
    assert emulator.state.active_streams[account.user_id] == 0
    assert emulator.state.disconnects == 0, "the emulator hung up, not the client"


async def test_stall_holds_the_connection_until_the_client_leaves(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    emulator.add_fault(Fault(kind="stall", after_events=1))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(chat(session, account.access_token), 0.3)
    assert emulator.state.active_streams[account.user_id] == 1, "still held open"
    await session.close()
    await eventually(lambda: emulator.state.active_streams[account.user_id] == 0)
    assert emulator.state.disconnects == 1


async def test_free_tier_overload_ends_the_stream_in_its_trailer(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    emulator.add_fault(Fault(kind="free_tier_overloaded"))  # the default error_style is "frame": still a trailer
    reply = await chat(session, account.access_token, chat_body("busy", thinking=True))
    assert reply.status == 200, "Connect streams answer HTTP 200; the refusal is in-band"
    assert not any(key in f for f in reply.frames for key in ("error", "done", "block"))
    assert reply.end is not None and reply.end[0] == FLAG_END_STREAM
    error = orjson.loads(reply.end[1])["error"]
    assert error["code"] == "resource_exhausted"
    assert error["message"].startswith("Too many people are chatting with Kimi right now")
    assert error["details"][0]["debug"]["reason"] == "REASON_SERVER_OVERLOADED_FOR_FREE_USER"


async def test_unauthenticated_inside_the_stream(
    session: aiohttp.ClientSession, account: Account, emulator: Emulator
) -> None:
    emulator.add_fault(Fault(kind="stream_unauthenticated"))
    reply = await chat(session, account.access_token, chat_body("who?", thinking=True))
    assert reply.status == 200
    assert not any("block" in f for f in reply.frames), "refused before any thinking or text"
    error = reply.frames[-1]["error"]
    assert (error["code"], error["details"][0]["debug"]["reason"]) == ("unauthenticated", "REASON_INVALID_AUTH_TOKEN")
    assert (await chat(session, account.access_token)).status == 200, "the token itself still works"

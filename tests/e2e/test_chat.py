"""Chat completions end to end: the real `openai` client → gateway → emulator, streamed and not."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import aiohttp
import orjson
import pytest
from openai import AsyncOpenAI

from kimi_free_api.emulator import Account, Emulator
from kimi_free_api.emulator.answers import expected_answer
from tests.e2e.support import Gateway, eventually


def _sse_payloads(raw: bytes) -> list[bytes]:
    events = [e for e in raw.split(b"\n\n") if e.strip()]
    assert all(e.startswith(b"data: ") for e in events), events
    return [e[len(b"data: ") :] for e in events]


async def test_non_streamed_answer_is_the_upstream_answer(client: AsyncOpenAI, emulator: Emulator) -> None:
    reply = await client.chat.completions.create(model="kimi", messages=[{"role": "user", "content": "你好，Kimi"}])
    assert reply.object == "chat.completion"
    assert reply.choices[0].message.content == expected_answer("你好，Kimi", emulator.config)
    assert reply.choices[0].finish_reason == "stop"
    assert reply.model == "kimi"
    assert reply.usage is not None and reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    await eventually(lambda: emulator.state.live_chats == 0)


async def test_stream_follows_openai_chunk_format(
    http: aiohttp.ClientSession, emulator: Emulator, account: Account
) -> None:
    body = {
        "model": "kimi",
        "messages": [{"role": "user", "content": "stream please"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    headers = {"Authorization": f"Bearer {account.refresh_token}"}
    async with http.post("/v1/chat/completions", json=body, headers=headers) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["Cache-Control"] == "no-cache"
        assert response.headers["X-Accel-Buffering"] == "no"
        raw = await response.read()
    payloads = _sse_payloads(raw)
    assert payloads[-1] == b"[DONE]"
    chunks = [orjson.loads(p) for p in payloads[:-1]]
    assert {(c["id"], c["created"], c["model"], c["object"]) for c in chunks} == {
        (chunks[0]["id"], chunks[0]["created"], "kimi", "chat.completion.chunk")
    }
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    content_chunks = chunks[1:-2]
    assert len(content_chunks) == emulator.config.event_count
    assert all(c["choices"][0]["finish_reason"] is None and c["usage"] is None for c in content_chunks)
    text = "".join(c["choices"][0]["delta"]["content"] for c in content_chunks)
    assert text == expected_answer("stream please", emulator.config)
    finish, usage = chunks[-2], chunks[-1]
    assert finish["choices"][0]["finish_reason"] == "stop" and finish["choices"][0]["delta"] == {}
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] > 0
    assert sum(1 for c in chunks if c.get("usage")) == 1


async def test_stream_without_include_usage_has_no_usage_chunk(client: AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="kimi", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert all(chunk.choices for chunk in chunks)
    assert all(chunk.usage is None for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_openai_stream_helper_assembles_the_answer(client: AsyncOpenAI, emulator: Emulator) -> None:
    async with client.chat.completions.stream(model="kimi", messages=[{"role": "user", "content": "helper"}]) as stream:
        final = await stream.get_final_completion()
    assert final.choices[0].message.content == expected_answer("helper", emulator.config)


async def test_deltas_are_relayed_as_they_arrive(client: AsyncOpenAI, emulator: Emulator) -> None:
    emulator.configure(event_count=6, event_delay_ms=150)
    started = time.monotonic()
    arrivals: list[float] = []
    stream = await client.chat.completions.create(
        model="kimi", messages=[{"role": "user", "content": "slowly"}], stream=True
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 6
    # Buffering to the end would make every delta arrive together after ~0.9 s.
    assert arrivals[-1] - arrivals[0] > 0.5
    assert arrivals[0] < 0.6


async def test_multibyte_characters_split_across_reads(client: AsyncOpenAI, emulator: Emulator) -> None:
    emulator.configure(split_utf8=True, event_count=30)
    prompt = "汉字和表情🙂必须完整"
    stream = await client.chat.completions.create(
        model="kimi", messages=[{"role": "user", "content": prompt}], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == expected_answer(prompt, emulator.config)
    assert "\ufffd" not in text


async def test_concurrent_streams_all_complete(client: AsyncOpenAI, emulator: Emulator) -> None:
    emulator.configure(enforce_single_stream=False, event_count=20, event_delay_ms=2)

    async def one(n: int) -> str:
        stream = await client.chat.completions.create(
            model="kimi", messages=[{"role": "user", "content": f"q{n}"}], stream=True
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    answers = await asyncio.gather(*(one(n) for n in range(20)))
    assert answers == [expected_answer(f"q{n}", emulator.config) for n in range(20)]
    await eventually(lambda: emulator.state.live_chats == 0)


async def _read_slowly(reader: asyncio.StreamReader) -> bytes:
    """A deliberately slow HTTP/1.1 client: small reads with pauses, then the chunked body decoded."""
    raw = bytearray()
    reads = 0
    while not raw.endswith(b"\r\n0\r\n\r\n"):
        piece = await reader.read(4096)
        assert piece, "the connection closed before the end of the body"
        raw += piece
        reads += 1
        if reads % 4 == 0:
            await asyncio.sleep(0.004)
    rest = bytes(raw[raw.index(b"\r\n\r\n") + 4 :])
    body = bytearray()
    while size := int(rest[: rest.index(b"\r\n")], 16):
        start = rest.index(b"\r\n") + 2
        body += rest[start : start + size]
        rest = rest[start + size + 2 :]
    return bytes(body)


async def test_slow_reader_gets_the_whole_answer_while_kimi_waits(
    gateway: Gateway, emulator: Emulator, account: Account, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kimi_free_api.api.openai.chat")
    emulator.configure(event_count=60000)
    prompt = "a long answer for a slow reader"
    body = orjson.dumps({"model": "kimi", "messages": [{"role": "user", "content": prompt}], "stream": True})
    host, port = gateway.url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window, so the gateway feels it
    sock.connect((host, int(port)))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {account.refresh_token}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    raw = await asyncio.wait_for(_read_slowly(reader), 60)
    writer.close()
    payloads = _sse_payloads(raw)
    assert payloads[-1] == b"[DONE]"
    chunks = [orjson.loads(p) for p in payloads[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == expected_answer(prompt, emulator.config)
    assert any("pausing the upstream" in r.getMessage() for r in caplog.records)

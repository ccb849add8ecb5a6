"""The load generator's two clients: OpenAI SSE through the gateway, and G3 Connect envelopes straight to Kimi.

Both read a whole reply, count its content pieces and note when the first one arrived, so the two paths are
measured the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

import aiohttp
import orjson

from kimi_free_api.upstream.connect import END_FLAGS, EnvelopeDecoder, encode_envelope

CHAT = "/apiv2/kimi.gateway.chat.v1.ChatService/Chat"
DELETE_CHAT = "/apiv2/kimi.chat.v1.ChatService/DeleteChat"
COMPLETIONS = "/v1/chat/completions"
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=180, sock_read=60)


@dataclass(slots=True)
class Reply:
    """One request's outcome. Times are seconds from just before the request was sent."""

    ok: bool = False
    chunks: int = 0
    reads: int = 0
    first_content_s: float | None = None
    total_s: float = 0.0
    text: str = ""
    chat_id: str = ""
    error: str = ""
    pieces: list[str] = field(default_factory=list)

    def fail(self, error: str) -> Reply:
        self.ok = False
        self.error = self.error or error
        return self


class SseParser:
    """Just enough of the SSE grammar: `data:` lines joined per event, blank line ends it, CRLF tolerated."""

    __slots__ = ("_data", "_partial")

    def __init__(self) -> None:
        self._partial = b""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[bytes]:
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        events: list[bytes] = []
        for raw in lines:
            line = raw[:-1] if raw.endswith(b"\r") else raw
            if not line:
                if self._data:
                    events.append(b"\n".join(self._data))
                    self._data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
            # Comments (`:`), `event:`, `id:` and `retry:` lines carry nothing this bench needs.
        return events


def chat_request(prompt: str, stream: bool) -> bytes:
    return orjson.dumps({"model": "kimi", "messages": [{"role": "user", "content": prompt}], "stream": stream})


async def gateway_stream(session: aiohttp.ClientSession, base_url: str, token: str, body: bytes) -> Reply:
    reply = Reply()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    start = perf_counter()
    try:
        async with session.post(base_url + COMPLETIONS, data=body, headers=headers, timeout=REQUEST_TIMEOUT) as resp:
            if resp.status != 200:
                return reply.fail(f"HTTP {resp.status}: {(await resp.read())[:200]!r}")
            parser = SseParser()
            done = False
            finish: object = None
            async for data in resp.content.iter_any():
                reply.reads += 1
                for payload in parser.feed(data):
                    if payload == b"[DONE]":
                        done = True
                        continue
                    event = orjson.loads(payload)
                    if "error" in event:
                        return reply.fail(f"error event: {event['error']}")
                    for choice in event.get("choices") or ():
                        content = (choice.get("delta") or {}).get("content")
                        if content:
                            if reply.first_content_s is None:
                                reply.first_content_s = perf_counter() - start
                            reply.chunks += 1
                            reply.pieces.append(content)
                        finish = choice.get("finish_reason") or finish
    except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
        return reply.fail(f"{type(exc).__name__}: {exc}")
    reply.total_s = perf_counter() - start
    reply.text = "".join(reply.pieces)
    reply.pieces.clear()
    if not done:
        return reply.fail("the stream ended without [DONE]")
    if finish != "stop":
        return reply.fail(f"finish_reason {finish!r}")
    reply.ok = True
    return reply


async def gateway_complete(session: aiohttp.ClientSession, base_url: str, token: str, body: bytes) -> Reply:
    reply = Reply()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    start = perf_counter()
    try:
        async with session.post(base_url + COMPLETIONS, data=body, headers=headers, timeout=REQUEST_TIMEOUT) as resp:
            raw = await resp.read()
            reply.reads = 1
            if resp.status != 200:
                return reply.fail(f"HTTP {resp.status}: {raw[:200]!r}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        return reply.fail(f"{type(exc).__name__}: {exc}")
    reply.total_s = reply.first_content_s = perf_counter() - start
    try:
        reply.text = orjson.loads(raw)["choices"][0]["message"]["content"]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
        return reply.fail(f"not a chat.completion: {exc!r}")
    reply.ok = True
    return reply


class DirectClient:
    """Makes the upstream calls the gateway makes for one answer: the Chat stream, then DeleteChat.

    `payload` should be a Chat body the gateway itself sent (read back from the emulator), and `headers` the
    gateway's browser-like headers, so the emulator does the same work for both paths.
    """

    def __init__(self, session: aiohttp.ClientSession, base_url: str, headers: dict[str, str]) -> None:
        self._session = session
        self._base_url = base_url
        self._chat_headers = {
            **headers,
            "Content-Type": "application/connect+json",
            "Connect-Protocol-Version": "1",
        }
        self._unary_headers = {**headers, "Content-Type": "application/json", "Connect-Protocol-Version": "1"}

    async def chat(self, payload: dict[str, Any]) -> Reply:
        reply = Reply()
        body = encode_envelope(orjson.dumps(payload))
        start = perf_counter()
        try:
            async with self._session.post(
                self._base_url + CHAT, data=body, headers=self._chat_headers, timeout=REQUEST_TIMEOUT
            ) as resp:
                if resp.status != 200:
                    return reply.fail(f"HTTP {resp.status}: {(await resp.read())[:200]!r}")
                await self._read_frames(resp, reply, start)
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
            return reply.fail(f"{type(exc).__name__}: {exc}")
        reply.total_s = perf_counter() - start
        reply.text = "".join(reply.pieces)
        reply.pieces.clear()
        return reply

    async def _read_frames(self, resp: aiohttp.ClientResponse, reply: Reply, start: float) -> None:
        decoder = EnvelopeDecoder()
        done = ended = False
        async for data in resp.content.iter_any():
            reply.reads += 1
            for flags, message in decoder.feed(data):
                if flags & END_FLAGS:
                    ended = True
                    # A Connect trailer with an error, or a gRPC-web trailer with a non-zero status, is a failure.
                    if flags & 0x80:
                        if b"grpc-status: 0" not in message:
                            reply.fail(f"trailer: {message[:200]!r}")
                            return
                    elif message.strip() and orjson.loads(message).get("error"):
                        reply.fail(f"trailer: {message[:200]!r}")
                        return
                    continue
                frame = orjson.loads(message)
                block = frame.get("block")
                if block is not None:
                    if frame.get("mask") == "block.text.content":
                        content = (block.get("text") or {}).get("content")
                        if content:
                            if reply.first_content_s is None:
                                reply.first_content_s = perf_counter() - start
                            reply.chunks += 1
                            reply.pieces.append(content)
                    continue
                chat = frame.get("chat")
                if chat and not reply.chat_id:
                    reply.chat_id = str(chat.get("id") or "")
                if "error" in frame:
                    reply.fail(f"error frame: {frame['error']}")
                    return
                if "done" in frame:
                    done = True
        if not (done and ended) or decoder.has_partial:
            reply.fail(f"the stream ended early (done={done}, end-stream={ended})")
            return
        reply.ok = True

    async def delete(self, chat_id: str) -> bool:
        body = orjson.dumps({"chat_id": chat_id})
        try:
            async with self._session.post(
                self._base_url + DELETE_CHAT, data=body, headers=self._unary_headers, timeout=REQUEST_TIMEOUT
            ) as resp:
                await resp.read()
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def answer(self, payload: dict[str, Any]) -> Reply:
        """The stream then its cleanup, in order, as a streaming gateway request does it; timed without the delete."""
        reply = await self.chat(payload)
        if reply.chat_id and not await self.delete(reply.chat_id):
            reply.fail("DeleteChat failed")
        return reply


async def gather_bounded(coros: list[Coroutine[Any, Any, Reply]], timeout_s: float) -> list[Reply]:
    """Runs them all at once; a stuck one becomes a failed reply instead of hanging the bench."""
    tasks = [asyncio.ensure_future(coro) for coro in coros]
    _, pending = await asyncio.wait(tasks, timeout=timeout_s)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
    replies: list[Reply] = []
    for task in tasks:
        if task in pending or task.cancelled():
            replies.append(Reply().fail("timed out"))
        elif task.exception() is not None:
            replies.append(Reply().fail(repr(task.exception())))
        else:
            replies.append(task.result())
    return replies

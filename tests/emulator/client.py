"""A small G3 client for these tests: one Chat call, its answer cut into envelopes and frames."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from kimi_free_api.emulator.framing import FLAG_END_STREAM, FLAG_TRAILER, EnvelopeReader, envelope
from kimi_free_api.emulator.g3 import CHAT

CONNECT_HEADERS = {"Content-Type": "application/connect+json", "Connect-Protocol-Version": "1"}


def chat_body(
    prompt: str = "hello",
    *,
    chat_id: str | None = None,
    search: bool = False,
    thinking: bool = False,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "scenario": "SCENARIO_K2D5",
        "tools": [{"type": "TOOL_TYPE_SEARCH", "search": {}}] if search else [],
        "message": {"role": "user", "blocks": [{"message_id": "", "text": {"content": prompt}}]},
        "options": {"thinking": thinking},
    }
    if chat_id:
        body["chat_id"] = chat_id
    return body


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    chunks: list[bytes] = field(default_factory=list)
    envelopes: list[tuple[int, bytes]] = field(default_factory=list)
    leftover: int = 0

    @property
    def frames(self) -> list[dict[str, Any]]:
        return [orjson.loads(message) for flags, message in self.envelopes if flags == 0]

    @property
    def ops(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if "op" in f]

    @property
    def end(self) -> tuple[int, bytes] | None:
        """The end-stream envelope, when the stream has one."""
        last = self.envelopes[-1] if self.envelopes else None
        return last if last is not None and last[0] & (FLAG_END_STREAM | FLAG_TRAILER) else None

    @property
    def body(self) -> Any:
        """The JSON (or text) of a refusal: everything received, read as one piece."""
        raw = b"".join(self.chunks)
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            return raw.decode()

    def chat_id(self) -> str:
        return str(self.frames[0]["chat"]["id"])

    def block_texts(self, *, cumulative: bool = False) -> dict[str, str]:
        """The text of every text or think block, by block id, assembled from its `set` and `append` frames."""
        texts: dict[str, str] = {}
        for update in self.ops:
            block = update.get("block", {})
            for kind in ("text", "think"):
                if kind in block:
                    content = block[kind]["content"]
                    whole = update["op"] == "set" or cumulative
                    texts[block["id"]] = content if whole else texts[block["id"]] + content
        return texts


async def chat(
    session: aiohttp.ClientSession,
    token: str,
    body: dict[str, Any] | None = None,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """POST a Chat call (an envelope of `body` unless raw `data` is given) and read the whole answer."""
    sent = {**CONNECT_HEADERS, "Authorization": f"Bearer {token}", **(headers or {})}
    payload = data if data is not None else envelope(orjson.dumps(body or chat_body()))
    async with session.post(CHAT, data=payload, headers=sent) as response:
        reply = Reply(response.status, dict(response.headers))
        reader = EnvelopeReader()
        async for chunk in response.content.iter_any():
            reply.chunks.append(chunk)
            if response.status == 200:
                reply.envelopes += reader.feed(chunk)
        reply.leftover = reader.pending
    return reply


async def call(
    session: aiohttp.ClientSession, path: str, token: str, body: dict[str, Any], **extra_headers: str
) -> tuple[int, Any]:
    """A unary Connect call: status and JSON answer."""
    headers = {"Authorization": f"Bearer {token}", **extra_headers}
    async with session.post(path, json=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def eventually(check: Callable[[], bool], seconds: float = 2.0) -> None:
    """Wait for a condition the server reaches on its own time (e.g. noticing a client went away)."""
    for _ in range(int(seconds / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")

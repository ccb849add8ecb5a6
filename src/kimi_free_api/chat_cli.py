"""`kimi-free-api chat`: a quick try without a client. Streams an answer from a running gateway (`--url`, plain
SSE over HTTP) or straight from a Kimi account (`--token`, through the upstream adapter, no server), with the
model's thinking shown apart from the answer: dimmed on a terminal, between `[thinking]` and `[/thinking]` lines
otherwise. With a prompt (an argument, or piped on stdin) it answers once; on a terminal with no prompt it keeps a
conversation going, one turn per line, until end of input (Ctrl-D) or `/exit`.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

import aiohttp
import orjson

from kimi_free_api.config import Settings
from kimi_free_api.core.answer.run import upstream_chat
from kimi_free_api.core.errors import GatewayError
from kimi_free_api.core.events import TextDelta, ThinkingDelta
from kimi_free_api.core.models.catalog import ModelCatalog
from kimi_free_api.core.models.modelspec import resolve_model
from kimi_free_api.upstream.proxies import ProxyRoutes
from kimi_free_api.upstream.web import KimiWebAdapter

_DIM, _PLAIN = "\x1b[2m", "\x1b[0m"
_CATALOG_TTL_S = 3600.0


class ChatFailed(Exception):
    """The gateway or Kimi refused the turn; the message says why (never a token)."""


@dataclass(slots=True)
class ChatOptions:
    url: str
    key: str
    token: str
    model: str


class Printer:
    """Writes one answer as it streams, its thinking kept apart from its text."""

    def __init__(self, out: TextIO, styled: bool) -> None:
        self._out = out
        self._styled = styled
        self._thinking = False
        self._text = False

    def thinking(self, text: str) -> None:
        if not self._thinking:
            self._thinking = True
            self._out.write(_DIM if self._styled else "[thinking]\n")
        self._out.write(text)
        self._out.flush()

    def text(self, text: str) -> None:
        self._close_thinking()
        self._text = True
        self._out.write(text)
        self._out.flush()

    def end(self) -> None:
        self._close_thinking()
        if self._text:
            self._text = False
            self._out.write("\n")
        self._out.flush()

    def _close_thinking(self) -> None:
        if self._thinking:
            self._thinking = False
            self._out.write(_PLAIN + "\n\n" if self._styled else "\n[/thinking]\n")


class Chat(Protocol):
    async def ask(self, prompt: str, printer: Printer) -> None: ...

    async def close(self) -> None: ...


class GatewayChat:
    """Turns sent to a gateway's /v1/chat/completions with the whole history (the gateway continues its chat)."""

    def __init__(self, options: ChatOptions) -> None:
        self._url = options.url.rstrip("/") + "/v1/chat/completions"
        self._model = options.model
        headers = {"Authorization": f"Bearer {options.key}"} if options.key else {}
        self._session = aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=None))
        self._history: list[dict[str, str]] = []

    async def ask(self, prompt: str, printer: Printer) -> None:
        messages = [*self._history, {"role": "user", "content": prompt}]
        body = {"model": self._model, "messages": messages, "stream": True}
        answer: list[str] = []
        try:
            async with self._session.post(self._url, json=body) as response:
                if response.status != 200:
                    raise ChatFailed(f"HTTP {response.status}: {_error_message(await response.read())}")
                async for chunk in _sse_data(response.content):
                    _show_chunk(chunk, printer, answer)
        except aiohttp.ClientError as exc:
            raise ChatFailed(f"could not reach {self._url} ({type(exc).__name__})") from exc
        finally:
            printer.end()
        self._history = [*messages, {"role": "assistant", "content": "".join(answer)}]

    async def close(self) -> None:
        await self._session.close()


class DirectChat:
    """Turns sent to Kimi with one account's token, continuing one Kimi chat; the chat is deleted on close."""

    def __init__(self, options: ChatOptions, settings: Settings) -> None:
        self._token = options.token
        self._model = options.model
        self._routes = ProxyRoutes(settings.kimi_proxy, ca_file=settings.kimi_ca_file)
        self._adapter = KimiWebAdapter(self._routes, settings)
        self._catalog = ModelCatalog(self._adapter, _CATALOG_TTL_S)
        self._chat_id = ""
        self._parent_id = ""

    async def ask(self, prompt: str, printer: Printer) -> None:
        try:
            spec = resolve_model(self._model, await self._catalog.get(self._token))
            stream = await self._adapter.chat(
                self._token, upstream_chat(prompt, self._chat_id, spec, (), self._parent_id)
            )
            try:
                while (batch := await stream.next_batch()) is not None:
                    for event in batch:
                        if isinstance(event, ThinkingDelta):
                            printer.thinking(event.text)
                        elif isinstance(event, TextDelta):
                            printer.text(event.text)
            finally:
                stream.close()
                self._chat_id, self._parent_id = stream.chat_id or self._chat_id, stream.message_id
        except GatewayError as exc:
            raise ChatFailed(exc.message) from exc
        finally:
            printer.end()

    async def close(self) -> None:
        try:
            if self._chat_id:
                with contextlib.suppress(GatewayError):
                    await self._adapter.delete_chat(self._token, self._chat_id)
        finally:
            await self._adapter.watchdog.stop()
            await self._routes.close()


async def _sse_data(content: aiohttp.StreamReader) -> AsyncIterator[dict[str, Any]]:
    async for line in content:
        if not line.startswith(b"data:"):
            continue  # keep-alive comments, blank separators
        data = line[5:].strip()
        if data == b"[DONE]":
            return
        chunk = orjson.loads(data)
        if isinstance(chunk, dict):
            yield chunk


def _show_chunk(chunk: dict[str, Any], printer: Printer, answer: list[str]) -> None:
    error = chunk.get("error")
    if isinstance(error, dict):
        raise ChatFailed(str(error.get("message") or "the answer failed"))
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if thinking := delta.get("reasoning_content"):
            printer.thinking(thinking)
        if text := delta.get("content"):
            answer.append(text)
            printer.text(text)


def _error_message(body: bytes) -> str:
    with contextlib.suppress(orjson.JSONDecodeError, AttributeError, TypeError):
        return str(orjson.loads(body)["error"]["message"])
    return body[:200].decode(errors="replace")


async def _turns(prompt: str, interactive: bool) -> AsyncIterator[str]:
    if not interactive:
        yield prompt
        return
    while True:
        try:
            line = await asyncio.to_thread(input, "you> ")
        except EOFError:
            return
        if line.strip() == "/exit":
            return
        if line.strip():
            yield line


async def run_chat(options: ChatOptions, settings: Settings, prompt: str, interactive: bool) -> int:
    """Answers each turn; 1 when one failed (the loop goes on after a failed turn when interactive)."""
    chat: Chat = DirectChat(options, settings) if options.token and not options.url else GatewayChat(options)
    printer = Printer(sys.stdout, styled=sys.stdout.isatty())
    status = 0
    try:
        async for turn in _turns(prompt, interactive):
            try:
                await chat.ask(turn, printer)
            except ChatFailed as exc:
                print(f"error: {exc}", file=sys.stderr)
                status = 1
    finally:
        await chat.close()
    return status

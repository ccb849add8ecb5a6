"""POST /v1/messages and POST /v1/messages/count_tokens.

Every answer takes the shared answer path (api/answering.py) and is read as the core's guided events
(core/guided/guided.py), as the Responses API does: with no tools and no JSON format they pass straight through. A
stream sends `message_start`, per block `content_block_start`, its deltas and `content_block_stop`, then
`message_delta` (stop reason, usage) and `message_stop`.

`input_tokens` counts the whole conversation as Kimi would be sent it in a new chat (system, messages, tool
declarations), with the gateway's tokenizer, so `count_tokens`, `message_start` and the final usage agree;
attachments count only as the line that names them.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

import orjson
from aiohttp import web

from kimi_free_api.api.answering import (
    answered,
    counted,
    guided_answer,
    guided_batches,
    read_answer,
    shown_model,
    stream_answer,
)
from kimi_free_api.api.anthropic.errors import anthropic_error_response, anthropic_errors, error_event
from kimi_free_api.api.anthropic.models import catalog_token
from kimi_free_api.api.anthropic.reply import Reply, message_id, tool_use_id, usage_object
from kimi_free_api.api.anthropic.request import parse_messages_request
from kimi_free_api.api.anthropic.stream import encode, message_stream
from kimi_free_api.api.auth import caller, credentials
from kimi_free_api.api.body import json_body
from kimi_free_api.api.context import TOKENS, service_of
from kimi_free_api.api.keepalive import EarlyStart
from kimi_free_api.core.answer.run import ChatRun
from kimi_free_api.core.conversation.prompt import build_prompt
from kimi_free_api.core.guided.guided import GuidedAnswer
from kimi_free_api.core.guided.tool_protocol import output_directive
from kimi_free_api.core.request import ChatRequest
from kimi_free_api.core.usage.usage import TokenCounter, Usage, measure


async def input_tokens(counter: TokenCounter, chat: ChatRequest) -> int:
    prompt = build_prompt(chat.messages, output_directive(chat.tools, chat.output))
    return (await measure(counter, prompt, "", "")).prompt_tokens


class _Message:
    """One message's identity, and the message objects built from it."""

    def __init__(self, model: str, input_tokens: int) -> None:
        self.id = message_id()
        self.model = model
        self.input_tokens = input_tokens

    def body(
        self, content: list[dict[str, Any]], stop: tuple[str | None, str | None], output_tokens: int
    ) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop[0],
            "stop_sequence": stop[1],
            "usage": usage_object(self.input_tokens, output_tokens),
        }


@anthropic_errors
async def create_message(request: web.Request) -> web.StreamResponse:
    tokens, owner = await caller(request)  # a refused caller's body is never read
    body = await json_body(request)
    chat = replace(parse_messages_request(body, tokens), owner=owner)
    message = _Message(chat.model, await input_tokens(request.app[TOKENS], chat))
    respond = functools.partial(_respond, request, chat, message)
    style = message_stream(message.body([], (None, None), 0))
    return await answered(request, chat, error_event, respond, style, error=anthropic_error_response)


async def _respond(
    request: web.Request, chat: ChatRequest, message: _Message, run: ChatRun, early: EarlyStart | None
) -> web.StreamResponse:
    message.model = shown_model(chat, run)
    if early is not None and early.response is None:  # not begun by a wait: `message_start` names that model too
        early.style = message_stream(message.body([], (None, None), 0))
    async with guided_answer(chat, run, tool_use_id) as guided:
        reply = Reply(chat, guided.run, streaming=early is not None)
        if early is not None:
            return await _stream(request, guided, reply, message, early)
        await read_answer(guided_batches(guided, None), reply, None)
        reply.finish(sources=True)
        reply.remember(guided.run)
        body = message.body(reply.blocks, reply.stop, await _output_tokens(request, reply, guided, message))
        return web.Response(body=orjson.dumps(body), content_type="application/json")


async def _output_tokens(request: web.Request, reply: Reply, guided: GuidedAnswer, message: _Message) -> int:
    usage = await reply.answer.usage(request.app[TOKENS], "", guided.written or reply.answer.text.joined())
    counted(request, Usage(message.input_tokens, usage.completion_tokens, usage.reasoning_tokens))
    return usage.completion_tokens


async def _stream(
    request: web.Request, guided: GuidedAnswer, reply: Reply, message: _Message, early: EarlyStart
) -> web.StreamResponse:
    writer = await early.writer(service_of(request).keepalive_s)

    async def read() -> None:
        await read_answer(guided_batches(guided, writer), reply, writer)

    async def closing() -> bytes:
        reply.finish(sources=False)
        reply.remember(guided.run)
        stop_reason, stop_sequence = reply.stop
        delta = {"stop_reason": stop_reason, "stop_sequence": stop_sequence}
        usage = usage_object(message.input_tokens, await _output_tokens(request, reply, guided, message))
        return encode(
            *reply.take_events(), {"type": "message_delta", "delta": delta, "usage": usage}, {"type": "message_stop"}
        )

    # `message_start` went out with the headers (api/anthropic/stream.py).
    return await stream_answer(request, writer.response, b"", read, closing, failure=error_event)


@anthropic_errors
async def count_tokens(request: web.Request) -> web.Response:
    tokens = await credentials(request)
    chat = parse_messages_request(await json_body(request), tokens, counting=True)
    await service_of(request).resolve_model(chat, catalog_token(request, tokens))  # unknown models: 404
    body = {"input_tokens": await input_tokens(request.app[TOKENS], chat)}
    return web.Response(body=orjson.dumps(body), content_type="application/json")

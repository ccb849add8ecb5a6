"""POST /v1/messages and POST /v1/messages/count_tokens.

Every answer is read as the core's guided events (core/guided.py), as the Responses API does: with no tools and no
JSON format they pass straight through. A stream sends `message_start`, per block `content_block_start`, its
deltas and `content_block_stop`, then `message_delta` (stop reason, usage) and `message_stop`.

`input_tokens` counts the whole conversation as Kimi would be sent it in a new chat (system, messages, tool
declarations), with the gateway's tokenizer, so `count_tokens`, `message_start` and the final usage agree;
attachments count only as the line that names them.
"""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
from aiohttp import web

from kimi_free_api.api.answering import counted
from kimi_free_api.api.anthropic.errors import anthropic_errors, error_event
from kimi_free_api.api.anthropic.models import catalog_token
from kimi_free_api.api.anthropic.reply import Reply, message_id, tool_use_id, usage_object
from kimi_free_api.api.anthropic.request import parse_messages_request
from kimi_free_api.api.anthropic.stream import EarlyMessage, PingWriter, encode
from kimi_free_api.api.auth import credentials
from kimi_free_api.api.body import json_body
from kimi_free_api.api.context import TOKENS, service_of
from kimi_free_api.core.conversation.prompt import build_prompt
from kimi_free_api.core.errors import ContentFiltered, GatewayError
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
    chat = parse_messages_request(await json_body(request), await credentials(request))
    message = _Message(chat.model, await input_tokens(request.app[TOKENS], chat))
    early = None
    if chat.stream:
        early = EarlyMessage(request, {"type": "message_start", "message": message.body([], (None, None), 0)})
    try:
        run = await service_of(request).start(chat, early.keepalive if early else None)
    except GatewayError as exc:
        if early is None or early.response is None:
            raise
        with contextlib.suppress(ConnectionError):
            await early.response.write(error_event(exc))
            await early.response.write_eof()
        return early.response
    guided = GuidedAnswer(run, chat.tools, chat.output, live=chat.stream, new_id=tool_use_id)
    try:
        if early is not None:
            return await _stream(request, chat, guided, message, early)
        return await _complete(request, chat, guided, message)
    finally:
        await guided.run.close()
        await run.close()


async def _read(reply: Reply, guided: GuidedAnswer, writer: PingWriter | None) -> None:
    try:
        async with contextlib.aclosing(guided.batches(writer.keepalive if writer else None)) as batches:
            async for batch in batches:
                reply.take(batch)
                if writer is not None and reply.events:
                    await writer.write(encode(*reply.take_events()))
                if reply.answer.cut:
                    break
    except ContentFiltered:
        reply.answer.reason = "content_filter"


async def _output_tokens(request: web.Request, reply: Reply, guided: GuidedAnswer, message: _Message) -> int:
    usage = await reply.answer.usage(request.app[TOKENS], "", "".join(guided.replies) or "".join(reply.answer.text))
    counted(request, Usage(message.input_tokens, usage.completion_tokens, usage.reasoning_tokens))
    return usage.completion_tokens


async def _stream(
    request: web.Request, chat: ChatRequest, guided: GuidedAnswer, message: _Message, early: EarlyMessage
) -> web.StreamResponse:
    response = await early.prepared()
    writer = PingWriter(response, service_of(request).keepalive_s)
    reply = Reply(chat, guided.run)
    try:
        async with writer.ticking():
            await _read(reply, guided, writer)
        reply.finish(sources=False)
        reply.remember(guided.run)
        stop_reason, stop_sequence = reply.stop
        delta = {"stop_reason": stop_reason, "stop_sequence": stop_sequence}
        usage = usage_object(message.input_tokens, await _output_tokens(request, reply, guided, message))
        out = encode(
            *reply.take_events(), {"type": "message_delta", "delta": delta, "usage": usage}, {"type": "message_stop"}
        )
    except GatewayError as exc:
        out = error_event(exc)
    except ConnectionError:
        return response  # the client left; closing the run cleans up upstream
    with contextlib.suppress(ConnectionError):
        await writer.write(out)
        await response.write_eof()
    return response


async def _complete(request: web.Request, chat: ChatRequest, guided: GuidedAnswer, message: _Message) -> web.Response:
    reply = Reply(chat, guided.run)
    await _read(reply, guided, None)
    reply.finish(sources=True)
    reply.remember(guided.run)
    body = message.body(reply.blocks, reply.stop, await _output_tokens(request, reply, guided, message))
    return web.Response(body=orjson.dumps(body), content_type="application/json")


@anthropic_errors
async def count_tokens(request: web.Request) -> web.Response:
    tokens = await credentials(request)
    chat = parse_messages_request(await json_body(request), tokens, counting=True)
    await service_of(request).resolve_model(chat, catalog_token(request, tokens))  # unknown models: 404
    body = {"input_tokens": await input_tokens(request.app[TOKENS], chat)}
    return web.Response(body=orjson.dumps(body), content_type="application/json")

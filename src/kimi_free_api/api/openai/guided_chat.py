"""Chat completions whose answer shape the gateway enforces: tool calls and JSON output (core/guided.py).

Off the relay hot path: events are pulled, checked and written batch by batch. Tool calls go out once checked, in
OpenAI's streaming shape: per call, a first delta with `index`, `id`, `type` and `function.name` (and empty
`arguments`), then the arguments; `finish_reason` is "tool_calls". Requests that declared their tools with the
deprecated `functions` field get the deprecated `function_call` shape (one call, finish_reason "function_call").
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import orjson
from aiohttp import web

from kimi_free_api.api.answer import ShownAnswer, completion_id
from kimi_free_api.api.context import TOKENS, service_of
from kimi_free_api.api.keepalive import EarlyStart, QuietWriter
from kimi_free_api.api.openai.sse import DONE, ChunkRenderer, error_event, usage_object
from kimi_free_api.core.answer.run import ChatRun
from kimi_free_api.core.errors import ContentFiltered, GatewayError
from kimi_free_api.core.events import Finished, SearchResult, TextDelta, ThinkingDelta
from kimi_free_api.core.guided.guided import GuidedAnswer, GuidedEvent, ToolCallsMade
from kimi_free_api.core.request import ChatRequest, ToolCall


def tool_calls_field(calls: Sequence[ToolCall]) -> list[dict[str, object]]:
    return [
        {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
        for call in calls
    ]


def _call_deltas(index: int, call: ToolCall, legacy: bool) -> list[dict[str, object]]:
    if legacy:
        return [
            {"function_call": {"name": call.name, "arguments": ""}},
            {"function_call": {"arguments": call.arguments}},
        ]
    head = {"index": index, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
    return [{"tool_calls": [head]}, {"tool_calls": [{"index": index, "function": {"arguments": call.arguments}}]}]


class _GuidedReply:
    """The client's view of a guided answer, collected from its events (and rendered, when streaming)."""

    def __init__(self, chat: ChatRequest, run: ChatRun, render: ChunkRenderer | None) -> None:
        self.answer = ShownAnswer(chat, run)
        self.render = render
        self.legacy = chat.tools is not None and chat.tools.legacy
        # Search lines would break JSON output.
        self.cites = chat.output is None
        self.calls: tuple[ToolCall, ...] = ()

    def take(self, batch: list[GuidedEvent]) -> bytes:
        answer, render = self.answer, self.render
        out: list[bytes] = []
        for event in batch:
            if type(event) is TextDelta:
                text = answer.add_text(event.text)
                if text and render is not None:
                    out.append(render.content(text))
            elif type(event) is ThinkingDelta:
                answer.reasoning.append(event.text)
                if render is not None:
                    out.append(render.reasoning(event.text))
            elif type(event) is SearchResult and self.cites:
                line = answer.add_search(event)
                if line and render is not None:
                    out.append(render.content(line))
            elif type(event) is ToolCallsMade:
                self.calls = event.calls[:1] if self.legacy else event.calls
                if render is not None:
                    for index, call in enumerate(self.calls):
                        out += [render.delta(delta) for delta in _call_deltas(index, call, self.legacy)]
            elif type(event) is Finished:
                answer.reason = event.reason
        return b"".join(out)

    def finish(self) -> str:
        tail = self.answer.finish()
        if self.calls:
            self.answer.reason = "function_call" if self.legacy else "tool_calls"
        return tail


async def guided_completion(
    request: web.Request, chat: ChatRequest, run: ChatRun, early: EarlyStart | None
) -> web.StreamResponse:
    guided = GuidedAnswer(run, chat.tools, chat.output, live=chat.stream)
    try:
        if early is not None:
            return await _stream(request, chat, guided, early)
        return await _complete(request, chat, guided)
    finally:
        await guided.run.close()  # the repair's run, if there was one (the caller closes the first)


async def _read(reply: _GuidedReply, guided: GuidedAnswer, writer: QuietWriter | None) -> None:
    try:
        async with contextlib.aclosing(guided.batches(writer.keepalive if writer else None)) as batches:
            async for batch in batches:
                data = reply.take(batch)
                if data and writer is not None:
                    await writer.write(data)
                if reply.answer.cut:
                    break
    except ContentFiltered:
        reply.answer.reason = "content_filter"


async def _stream(
    request: web.Request, chat: ChatRequest, guided: GuidedAnswer, early: EarlyStart
) -> web.StreamResponse:
    response = await early.prepared()
    run = guided.run
    render = ChunkRenderer(completion_id(run), run.created, chat.model, chat.include_usage)
    reply = _GuidedReply(chat, run, render)
    writer = QuietWriter(response, service_of(request).keepalive_s)
    out: list[bytes] = []
    try:
        await writer.write(render.role())
        async with writer.ticking():
            await _read(reply, guided, writer)
        tail = reply.finish()
        if tail:
            out.append(render.content(tail))
        reply.answer.remember(guided.run, "".join(reply.answer.text), reply.calls)
        out.append(render.finish(reply.answer.reason))
        if chat.include_usage:
            usage = await reply.answer.usage(request.app[TOKENS], "\n\n".join(guided.prompts), "".join(guided.replies))
            out.append(render.usage(usage))
        out.append(DONE)
    except GatewayError as exc:
        out = [error_event(exc), DONE]
    except ConnectionError:
        return response
    with contextlib.suppress(ConnectionError):
        await response.write(b"".join(out))
        await response.write_eof()
    return response


async def _complete(request: web.Request, chat: ChatRequest, guided: GuidedAnswer) -> web.Response:
    reply = _GuidedReply(chat, guided.run, None)
    await _read(reply, guided, None)
    reply.finish()
    answer, calls = reply.answer, reply.calls
    content = "".join(answer.text)
    if not calls and reply.cites:
        content += answer.citations.sources()
    answer.remember(guided.run, content, calls)
    message: dict[str, object] = {
        "role": "assistant",
        "content": content if content or not calls else None,
        "refusal": None,
        "annotations": [],
    }
    if calls and reply.legacy:
        message["function_call"] = {"name": calls[0].name, "arguments": calls[0].arguments}
    elif calls:
        message["tool_calls"] = tool_calls_field(calls)
    if answer.reasoning:
        message["reasoning_content"] = "".join(answer.reasoning)
    usage = await answer.usage(request.app[TOKENS], "\n\n".join(guided.prompts), "".join(guided.replies))
    body = {
        "id": completion_id(guided.run),
        "object": "chat.completion",
        "created": guided.run.created,
        "model": chat.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": answer.reason}],
        "usage": usage_object(usage),
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")

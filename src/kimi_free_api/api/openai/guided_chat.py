"""Chat completions whose answer shape the gateway enforces: tool calls and JSON output (core/guided/guided.py);
and the one `chat.completion` body of every answer returned whole.

Off the relay hot path: events are pulled, checked and written batch by batch. Tool calls go out once checked, in
OpenAI's streaming shape: per call, a first delta with `index`, `id`, `type` and `function.name` (and empty
`arguments`), then the arguments; `finish_reason` is "tool_calls". Requests that declared their tools with the
deprecated `functions` field get the deprecated `function_call` shape (one call, finish_reason "function_call").
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from aiohttp import web

from kimi_free_api.api.answer import ShownAnswer
from kimi_free_api.api.answering import counted, guided_answer, guided_batches, read_answer, shown_model, stream_answer
from kimi_free_api.api.context import TOKENS, service_of
from kimi_free_api.api.keepalive import EarlyStart
from kimi_free_api.api.openai.sse import DONE, ChunkRenderer, completion_id, error_event, usage_object
from kimi_free_api.core.answer.run import ChatRun
from kimi_free_api.core.errors import GatewayError
from kimi_free_api.core.events import Finished, SearchResult, TextDelta, ThinkingDelta
from kimi_free_api.core.guided.guided import GuidedAnswer, GuidedEvent, ToolCallsMade
from kimi_free_api.core.request import ChatRequest, ToolCall
from kimi_free_api.core.usage.usage import Usage


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


class ChatReply:
    """The client's view of a chat completion's answer, collected from its events (and rendered, when streaming);
    the `Rendering` of api/answering.py. Plain streams relay their chunks faster (api/openai/chat.py)."""

    def __init__(self, chat: ChatRequest, run: ChatRun, render: ChunkRenderer | None) -> None:
        self.answer = ShownAnswer(chat, run)
        self.render = render
        self.legacy = chat.tools is not None and chat.tools.legacy
        # Search lines would break JSON output.
        self.cites = chat.output is None
        self.calls: tuple[ToolCall, ...] = ()

    def take(self, batch: Sequence[GuidedEvent]) -> bytes:
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

    @property
    def cut(self) -> bool:
        return self.answer.cut

    def filtered(self) -> None:
        self.answer.reason = "content_filter"

    def finish(self) -> str:
        tail = self.answer.finish()
        if self.calls:
            self.answer.reason = "function_call" if self.legacy else "tool_calls"
        return tail


async def guided_completion(
    request: web.Request, chat: ChatRequest, run: ChatRun, early: EarlyStart | None
) -> web.StreamResponse:
    async with guided_answer(chat, run) as guided:
        if early is not None:
            return await _stream(request, chat, guided, early)
        reply = ChatReply(chat, guided.run, None)
        await read_answer(guided_batches(guided, None), reply, None)
        usage = counted(request, await reply.answer.usage(request.app[TOKENS], guided.prompt, guided.written))
        return completion(chat, guided.run, reply, usage)


async def _stream(
    request: web.Request, chat: ChatRequest, guided: GuidedAnswer, early: EarlyStart
) -> web.StreamResponse:
    writer = await early.writer(service_of(request).keepalive_s)
    run = guided.run
    render = ChunkRenderer(completion_id(run), run.created, shown_model(chat, run), chat.include_usage)
    reply = ChatReply(chat, run, render)

    async def read() -> None:
        await read_answer(guided_batches(guided, writer), reply, writer)

    async def closing() -> bytes:
        tail = reply.finish()
        reply.answer.remember(guided.run, reply.answer.text.joined(), reply.calls)
        usage = None
        if chat.include_usage:
            usage = counted(request, await reply.answer.usage(request.app[TOKENS], guided.prompt, guided.written))
        return render.ending(tail, reply.answer.reason, usage)

    return await stream_answer(request, writer.response, render.role(), read, closing, failure=failure)


def failure(exc: GatewayError) -> bytes:
    """A failure after the stream's headers went out."""
    return error_event(exc) + DONE


def completion(chat: ChatRequest, run: ChatRun, reply: ChatReply, usage: Usage) -> web.Response:
    """The whole answer as one `chat.completion`; a complete one is remembered for continuity."""
    reply.finish()
    answer, calls = reply.answer, reply.calls
    content = answer.text.joined()
    if not calls and reply.cites:
        content += answer.citations.sources()
    answer.remember(run, content, calls)
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
        message["reasoning_content"] = answer.reasoning.joined()
    body = {
        "id": completion_id(run),
        "object": "chat.completion",
        "created": run.created,
        "model": shown_model(chat, run),
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": answer.reason}],
        "usage": usage_object(usage),
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")

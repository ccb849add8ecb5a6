"""POST /v1/chat/completions: one Kimi answer, streamed as OpenAI chunks or returned as one completion."""

from __future__ import annotations

import uuid

import orjson
from aiohttp import web

from kimi_free_api.api.auth import bearer_tokens
from kimi_free_api.api.body import json_body
from kimi_free_api.api.context import service_of
from kimi_free_api.api.schemas import parse_chat_request
from kimi_free_api.api.sse import DONE, STREAM_HEADERS, ChunkRenderer, error_event, usage_object
from kimi_free_api.core.citations import Citations
from kimi_free_api.core.errors import ContentFiltered, GatewayError
from kimi_free_api.core.events import Finished, SearchResult, TextDelta, ThinkingDelta
from kimi_free_api.core.request import ChatRequest
from kimi_free_api.core.service import ChatRun
from kimi_free_api.core.usage import Usage


def _completion_id(run: ChatRun) -> str:
    # The seed answers with the Kimi chat id, which clients send back as conversation_id.
    return run.chat_id or f"chatcmpl-{uuid.uuid4().hex}"


async def chat_completions(request: web.Request) -> web.StreamResponse:
    chat = parse_chat_request(await json_body(request), bearer_tokens(request))
    run = await service_of(request).start(chat)
    try:
        if chat.stream:
            return await _stream(request, chat, run)
        return await _complete(chat, run)
    finally:
        await run.close()


async def _stream(request: web.Request, chat: ChatRequest, run: ChatRun) -> web.StreamResponse:
    response = web.StreamResponse(headers=STREAM_HEADERS)
    await response.prepare(request)
    render = ChunkRenderer(_completion_id(run), run.created, chat.model, chat.include_usage)
    citations = Citations(run.spec.silent)
    answer: list[str] = []
    reasoning: list[str] = []
    out = [render.role()]
    reason = "stop"
    line_break = False
    try:
        try:
            async for batch in run:
                for event in batch:
                    kind = type(event)
                    if kind is TextDelta:
                        text = event.text  # type: ignore[union-attr]
                        if line_break:  # keeps the answer's markdown apart from the search lines
                            text = "\n" + text
                            line_break = False
                        answer.append(text)
                        out.append(render.content(text))
                    elif kind is ThinkingDelta:
                        reasoning.append(event.text)  # type: ignore[union-attr]
                        out.append(render.reasoning(event.text))  # type: ignore[union-attr]
                    elif kind is SearchResult:
                        line = citations.add(event)  # type: ignore[arg-type]
                        if line:
                            line_break = True
                            out.append(render.content(line))
                    elif kind is Finished:
                        reason = event.reason  # type: ignore[union-attr]
                if out:
                    await response.write(b"".join(out))
                    out.clear()
        except ContentFiltered:
            reason = "content_filter"
        out.append(render.finish(reason))
        if chat.include_usage:
            out.append(render.usage(Usage.estimate(run.prompt, "".join(answer), "".join(reasoning))))
        out.append(DONE)
    except GatewayError as exc:
        # Headers are gone already: the failure must travel as an event, never as a silent close.
        out.append(error_event(exc))
        out.append(DONE)
    try:
        await response.write(b"".join(out))
        await response.write_eof()
    except ConnectionError:
        pass  # the client left; closing the run cleans up upstream
    return response


async def _complete(chat: ChatRequest, run: ChatRun) -> web.Response:
    citations = Citations(run.spec.silent)
    answer: list[str] = []
    reasoning: list[str] = []
    reason = "stop"
    try:
        async for batch in run:
            for event in batch:
                if isinstance(event, TextDelta):
                    answer.append(event.text)
                elif isinstance(event, ThinkingDelta):
                    reasoning.append(event.text)
                elif isinstance(event, SearchResult):
                    citations.add(event)
                elif isinstance(event, Finished):
                    reason = event.reason
    except ContentFiltered:
        reason = "content_filter"
    text = "".join(answer)
    thought = "".join(reasoning)
    message: dict[str, object] = {
        "role": "assistant",
        "content": text + citations.sources(),
        "refusal": None,
        "annotations": [],
    }
    if thought:
        message["reasoning_content"] = thought
    body = {
        "id": _completion_id(run),
        "object": "chat.completion",
        "created": run.created,
        "model": chat.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reason}],
        "usage": usage_object(Usage.estimate(run.prompt, text, thought)),
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")

"""POST /v1/responses: OpenAI's Responses API (Codex CLI, the Agents SDK's default model), on the same core as chat.

Streams are `event: <type>` + `data: <json>` pairs, each payload repeating its `type` with an increasing
`sequence_number`, in the order clients check: `response.created`, `response.in_progress`, then per output item
`response.output_item.added`, its content (`response.content_part.added`, `response.output_text.delta`…`.done`,
`response.content_part.done`; `response.reasoning_text.delta`/`.done` for Kimi's thinking;
`response.function_call_arguments.delta`/`.done` for a call), `response.output_item.done`, and finally
`response.completed` (or `response.incomplete` when cut, `response.failed` on a failure). No `[DONE]`.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import orjson
from aiohttp import web

from kimi_free_api.api.answer import Pieces
from kimi_free_api.api.answering import (
    answered,
    counted,
    guided_answer,
    guided_batches,
    read_answer,
    shown_model,
    stream_answer,
)
from kimi_free_api.api.auth import bearer_tokens, caller, credentials
from kimi_free_api.api.body import json_body
from kimi_free_api.api.context import RESPONSES, TOKENS, service_of
from kimi_free_api.api.keepalive import EarlyStart
from kimi_free_api.api.openai.responses_request import ResponsesRequest, parse_responses_request
from kimi_free_api.core.answer.limits import OutputLimit
from kimi_free_api.core.answer.run import ChatRun
from kimi_free_api.core.conversation.response_store import StoredResponse
from kimi_free_api.core.errors import GatewayError, InvalidRequest, NotFound
from kimi_free_api.core.events import Finished, TextDelta, ThinkingDelta
from kimi_free_api.core.guided.guided import GuidedAnswer, GuidedEvent, ToolCallsMade
from kimi_free_api.core.request import ChatRequest, Message, ToolCall
from kimi_free_api.core.usage.usage import Usage, measure

_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _owner(request: web.Request) -> str:
    """Whose response it is: a digest of the credentials, so one client cannot continue another's responses."""
    return hashlib.sha256("\n".join(bearer_tokens(request)).encode()).hexdigest()


def _failure(exc: GatewayError) -> dict[str, str]:
    # The Responses API has its own small set of error codes.
    if exc.status == 429:
        code = "rate_limit_exceeded"
    elif exc.status < 500:
        code = "invalid_prompt"
    else:
        code = "server_error"
    return {"code": code, "message": exc.message}


def _usage(usage: Usage) -> dict[str, object]:
    return {
        "input_tokens": usage.prompt_tokens,
        # Required by OpenAI's spec (and the SDK's strict model) though Kimi caches nothing we could report.
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


class _Events:
    """Serialises stream events with their `sequence_number`."""

    def __init__(self) -> None:
        self._sequence = 0

    def encode(self, *events: dict[str, Any]) -> bytes:
        return b"".join(self._encode(event) for event in events)

    def _encode(self, event: dict[str, Any]) -> bytes:
        payload = {**event, "sequence_number": self._sequence}
        self._sequence += 1
        kind: str = event["type"]
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class _Output:
    """The output items of one response, built from the answer's events, and the stream events that build them
    (encoded when the response streams): the `Rendering` of api/answering.py."""

    def __init__(
        self, namespaced: dict[str, tuple[str, str]], max_tokens: int | None, stream: _Events | None = None
    ) -> None:
        self.namespaced = namespaced
        self.stream = stream
        self.limit = OutputLimit.create((), max_tokens)
        self.items: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.text = Pieces()
        self.reasoning = Pieces()
        self.calls: tuple[ToolCall, ...] = ()
        self.reason = "stop"
        # The item being written (a message or reasoning), and its text so far.
        self._open: dict[str, Any] | None = None
        self._written = Pieces()

    @property
    def cut(self) -> bool:
        return self.limit is not None and self.limit.reason is not None

    def filtered(self) -> None:
        self.reason = "content_filter"

    def flush(self) -> bytes:
        """The stream events made since the last flush."""
        data = self.stream.encode(*self.events) if self.stream is not None else b""
        self.events.clear()
        return data

    def take(self, batch: Sequence[GuidedEvent]) -> bytes:
        for event in batch:
            if type(event) is TextDelta:
                self._say(event.text)
            elif type(event) is ThinkingDelta:
                self._think(event.text)
            elif type(event) is ToolCallsMade:
                self.close()
                self.calls = event.calls
                for call in event.calls:
                    self._call(call)
            elif type(event) is Finished:
                self.reason = event.reason
        if self.limit is not None and self.limit.reason is not None:
            self.reason = self.limit.reason
        return self.flush()

    def _start(self, item: dict[str, Any]) -> None:
        self.close()
        self._open = item
        self._written = Pieces()
        self.items.append(item)
        self.events.append({"type": "response.output_item.added", "output_index": len(self.items) - 1, "item": item})

    def _where(self) -> dict[str, Any]:
        assert self._open is not None
        return {"item_id": self._open["id"], "output_index": len(self.items) - 1}

    def _say(self, text: str) -> None:
        if self.limit is not None:
            text = self.limit.feed(text)
        if not text:
            return
        if self._open is None or self._open["type"] != "message":
            self._start(
                {"type": "message", "id": _id("msg"), "status": "in_progress", "role": "assistant", "content": []}
            )
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            self.events.append(
                {"type": "response.content_part.added", **self._where(), "content_index": 0, "part": part}
            )
        self.text.append(text)
        self._written.append(text)
        delta = {"type": "response.output_text.delta", **self._where(), "content_index": 0, "delta": text}
        self.events.append({**delta, "logprobs": []})

    def _think(self, text: str) -> None:
        if self._open is None or self._open["type"] != "reasoning":
            self._start({"type": "reasoning", "id": _id("rs"), "summary": [], "content": []})
        self.reasoning.append(text)
        self._written.append(text)
        self.events.append(
            {"type": "response.reasoning_text.delta", **self._where(), "content_index": 0, "delta": text}
        )

    def _call(self, call: ToolCall) -> None:
        namespace, name = self.namespaced.get(call.name, ("", call.name))
        item: dict[str, Any] = {"type": "function_call", "id": _id("fc"), "call_id": call.id, "name": name}
        if namespace:
            item["namespace"] = namespace
        self.items.append({**item, "arguments": "", "status": "in_progress"})
        index = len(self.items) - 1
        self.events.append({"type": "response.output_item.added", "output_index": index, "item": self.items[-1]})
        where = {"item_id": item["id"], "output_index": index}
        self.events.append({"type": "response.function_call_arguments.delta", **where, "delta": call.arguments})
        done = {"type": "response.function_call_arguments.done", **where, "name": name, "arguments": call.arguments}
        self.events.append(done)
        self.items[-1] = {**item, "arguments": call.arguments, "status": "completed"}
        self.events.append({"type": "response.output_item.done", "output_index": index, "item": self.items[-1]})

    def close(self) -> None:
        """Ends the item being written."""
        item, self._open = self._open, None
        if item is None:
            return
        index = len(self.items) - 1
        text = self._written.joined()
        where = {"item_id": item["id"], "output_index": index, "content_index": 0}
        if item["type"] == "message":
            if self.limit is not None:  # what a stop-sequence check was still holding back
                tail = self.limit.flush()
                text += tail
                self.text.append(tail)
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
            self.events.append({"type": "response.output_text.done", **where, "text": text, "logprobs": []})
            self.events.append({"type": "response.content_part.done", **where, "part": part})
            item = {**item, "status": "completed", "content": [part]}
        else:
            self.events.append({"type": "response.reasoning_text.done", **where, "text": text})
            item = {**item, "content": [{"type": "reasoning_text", "text": text}]}
        self.items[index] = item
        self.events.append({"type": "response.output_item.done", "output_index": index, "item": item})


class _Response:
    """One response's identity and settings, and the response objects built from them."""

    def __init__(self, parsed: ResponsesRequest, model: str) -> None:
        self.id = _id("resp")
        self.created_at = int(time.time())
        self.parsed = parsed
        self.model = model

    def body(
        self,
        status: str,
        output: list[dict[str, Any]],
        usage: Usage | None = None,
        *,
        error: GatewayError | None = None,
        incomplete: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "completed_at": int(time.time()) if status == "completed" else None,
            "error": _failure(error) if error is not None else None,
            "incomplete_details": {"reason": incomplete} if incomplete else None,
            "model": self.model,
            "output": output,
            "store": self.parsed.store,
            "usage": _usage(usage) if usage is not None else None,
            **self.parsed.echo,
        }
        text = "".join(
            part["text"] for item in output if item["type"] == "message" for part in item["content"] if "text" in part
        )
        if text:
            body["output_text"] = text  # the SDKs' convenience property, as OpenAI sends it
        return body


async def get_response(request: web.Request) -> web.Response:
    """GET /v1/responses/{response_id}: a completed response, as it was returned."""
    stored = await _own_response(request)
    if request.query.get("stream", "").lower() in ("true", "1"):
        raise InvalidRequest(
            "Replaying a stored response as a stream is not supported: retrieve it without `stream`.", param="stream"
        )
    return web.Response(body=stored.body, content_type="application/json")


async def delete_response(request: web.Request) -> web.Response:
    """DELETE /v1/responses/{response_id}: forgotten, so it can no longer be retrieved or continued."""
    stored = await _own_response(request)
    await request.app[RESPONSES].delete(stored.id)
    body = {"id": stored.id, "object": "response", "deleted": True}
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def _own_response(request: web.Request) -> StoredResponse:
    await credentials(request)  # a bad credential is a 401, as on every other route
    response_id = request.match_info["response_id"]
    stored = await request.app[RESPONSES].get(response_id)
    if stored is None or stored.owner != _owner(request):
        raise NotFound(
            f"Response with id {response_id!r} not found: the gateway keeps its last 4,096 completed responses, "
            "for the credentials that created them, when `store` was not false.",
            param="response_id",
        )
    return stored


async def create_response(request: web.Request) -> web.StreamResponse:
    tokens, owner = await caller(request)  # a refused caller's body is never read
    body = await json_body(request)
    parsed = parse_responses_request(body, tokens)
    history: tuple[Message, ...] = ()
    if parsed.previous_response_id:
        stored = await request.app[RESPONSES].get(parsed.previous_response_id)
        if stored is None or stored.owner != _owner(request):
            raise NotFound(
                f"No response {parsed.previous_response_id!r} to continue: the gateway keeps its last 4,096 completed "
                "responses, for the credentials that created them, when `store` was not false.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        history = stored.messages
    conversation = history + parsed.messages
    chat = replace(parsed.chat, messages=parsed.system + conversation, owner=owner)
    creating = _Creation(request, chat, _Response(parsed, chat.model), conversation)
    return await answered(request, chat, creating.failed_to_start, creating.respond)


class _Creation:
    """One `POST /v1/responses` from its start to its stored response, streamed or returned whole."""

    def __init__(
        self, request: web.Request, chat: ChatRequest, response: _Response, conversation: tuple[Message, ...]
    ) -> None:
        self.request = request
        self.chat = chat
        self.response = response
        self.conversation = conversation
        self.events = _Events()

    def failed_to_start(self, exc: GatewayError) -> bytes:
        created = {"type": "response.created", "response": self.response.body("in_progress", [])}
        failed = {"type": "response.failed", "response": self.response.body("failed", [], error=exc)}
        return self.events.encode(created, failed)

    async def respond(self, run: ChatRun, early: EarlyStart | None) -> web.StreamResponse:
        self.response.model = shown_model(self.chat, run)
        async with guided_answer(self.chat, run) as guided:
            if early is not None:
                return await self._stream(guided, early)
            output = self._output(None)
            await read_answer(guided_batches(guided, None), output, None)
            output.close()
            body = await self._finish(guided, output)
            return web.Response(body=orjson.dumps(body), content_type="application/json")

    def _output(self, stream: _Events | None) -> _Output:
        return _Output(self.response.parsed.namespaced, self.chat.max_tokens, stream)

    async def _finish(self, guided: GuidedAnswer, output: _Output) -> dict[str, Any]:
        """The final response object; a completed one is remembered for `previous_response_id` and continuity."""
        response = self.response
        usage = counted(
            self.request,
            await measure(self.request.app[TOKENS], guided.prompt, guided.written, output.reasoning.joined()),
        )
        incomplete = _INCOMPLETE.get(output.reason)
        if incomplete is not None:
            return response.body("incomplete", output.items, usage, incomplete=incomplete)
        reply = Message(role="assistant", content=output.text.joined(), tool_calls=output.calls)
        guided.run.remember(reply)
        body = response.body("completed", output.items, usage)
        if response.parsed.store:
            stored = StoredResponse(response.id, _owner(self.request), (*self.conversation, reply), orjson.dumps(body))
            await self.request.app[RESPONSES].put(stored)
        return body

    async def _stream(self, guided: GuidedAnswer, early: EarlyStart) -> web.StreamResponse:
        writer = await early.writer(service_of(self.request).keepalive_s)
        events = self.events
        output = self._output(events)

        async def read() -> None:
            await read_answer(guided_batches(guided, writer), output, writer)

        async def closing() -> bytes:
            output.close()
            body = await self._finish(guided, output)
            return output.flush() + events.encode({"type": f"response.{body['status']}", "response": body})

        def failure(exc: GatewayError) -> bytes:
            output.close()  # the items begun so far end, then the response fails
            failed = {"type": "response.failed", "response": self.response.body("failed", output.items, error=exc)}
            return output.flush() + events.encode(failed)

        opening = self.response.body("in_progress", [])
        started = events.encode(
            {"type": "response.created", "response": opening}, {"type": "response.in_progress", "response": opening}
        )
        return await stream_answer(self.request, writer.response, started, read, closing, failure=failure)

"""OpenAI `chat.completion.chunk` events, pre-rendered around the per-event part.

Everything that is the same on every chunk of a stream (id, created, model, the envelope keys) is serialised once;
a content chunk then costs one JSON string encode and two byte concatenations.
"""

from __future__ import annotations

import uuid

import orjson

from kimi_free_api.api.errors import error_object
from kimi_free_api.core.answer.run import ChatRun
from kimi_free_api.core.errors import GatewayError
from kimi_free_api.core.usage.usage import Usage

DONE = b"data: [DONE]\n\n"


def completion_id(run: ChatRun) -> str:
    # The seed answers with the Kimi chat id, which clients send back as conversation_id.
    return run.chat_id or f"chatcmpl-{uuid.uuid4().hex}"


def usage_object(usage: Usage) -> dict[str, object]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def error_event(exc: GatewayError) -> bytes:
    return b"data: " + orjson.dumps({"error": error_object(exc)}) + b"\n\n"


class ChunkRenderer:
    __slots__ = ("_content", "_envelope", "_head", "_reasoning", "_tail", "_usage_null")

    def __init__(self, completion_id: str, created: int, model: str, include_usage: bool) -> None:
        self._envelope = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        self._head = (
            b'data: {"id":'
            + orjson.dumps(completion_id)
            + b',"object":"chat.completion.chunk","created":'
            + str(created).encode()
            + b',"model":'
            + orjson.dumps(model)
            + b',"choices":[{"index":0,"delta":'
        )
        self._usage_null = b',"usage":null' if include_usage else b""
        self._tail = b',"logprobs":null,"finish_reason":null}]' + self._usage_null + b"}\n\n"
        self._content = self._head + b'{"content":'
        self._reasoning = self._head + b'{"reasoning_content":'

    def role(self) -> bytes:
        return self._head + b'{"role":"assistant","content":""}' + self._tail

    def content(self, text: str) -> bytes:
        return self._content + orjson.dumps(text) + b"}" + self._tail

    def reasoning(self, text: str) -> bytes:
        return self._reasoning + orjson.dumps(text) + b"}" + self._tail

    def delta(self, delta: dict[str, object]) -> bytes:
        """Any other delta (tool calls); not on the relay's hot path."""
        return self._head + orjson.dumps(delta) + self._tail

    def finish(self, reason: str) -> bytes:
        return (
            self._head
            + b'{},"logprobs":null,"finish_reason":'
            + orjson.dumps(reason)
            + b"}]"
            + self._usage_null
            + b"}\n\n"
        )

    def usage(self, usage: Usage) -> bytes:
        chunk = {**self._envelope, "choices": [], "usage": usage_object(usage)}
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def ending(self, tail: str, reason: str, usage: Usage | None) -> bytes:
        """The stream's last chunks: the text a stop-sequence check held back, the finish reason, the usage when it
        was asked for, and `[DONE]`."""
        held = self.content(tail) if tail else b""
        return held + self.finish(reason) + (self.usage(usage) if usage is not None else b"") + DONE

"""ChunkRenderer: pre-rendered OpenAI chat.completion.chunk events that must still be exact JSON."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from kimi_free_api.api.keepalive import STREAM_HEADERS
from kimi_free_api.api.openai.sse import DONE, ChunkRenderer, error_event, usage_object
from kimi_free_api.core.errors import GatewayError, RateLimited
from kimi_free_api.core.usage.usage import Usage

from .tokens import mint_jwt

ID = "chatcmpl-0123456789abcdef"
CREATED = 1_767_225_600
MODEL = "kimi-search"


def parse(event: bytes) -> dict[str, Any]:
    assert event.startswith(b"data: ")
    assert event.endswith(b"\n\n")
    body = event[len(b"data: ") : -2]
    assert b"\n" not in body and b"\r" not in body
    parsed = orjson.loads(body)
    assert isinstance(parsed, dict)
    return parsed


def expected(delta: dict[str, Any], finish: str | None = None, include_usage: bool = False) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": ID,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if include_usage:
        chunk["usage"] = None
    return chunk


@pytest.mark.parametrize("include_usage", [False, True])
def test_every_chunk_kind(include_usage: bool) -> None:
    renderer = ChunkRenderer(ID, CREATED, MODEL, include_usage)
    chunks = [
        (renderer.role(), expected({"role": "assistant", "content": ""}, None, include_usage)),
        (renderer.reasoning("Let me think."), expected({"reasoning_content": "Let me think."}, None, include_usage)),
        (renderer.content("Hello"), expected({"content": "Hello"}, None, include_usage)),
        (renderer.content(""), expected({"content": ""}, None, include_usage)),
        (renderer.finish("stop"), expected({}, "stop", include_usage)),
        (renderer.finish("length"), expected({}, "length", include_usage)),
    ]
    for event, wanted in chunks:
        parsed = parse(event)
        assert parsed == wanted
        assert list(parsed) == list(wanted)  # the key order OpenAI uses
        assert ("usage" in parsed) is include_usage


def test_usage_chunk() -> None:
    renderer = ChunkRenderer(ID, CREATED, MODEL, include_usage=True)
    parsed = parse(renderer.usage(Usage(prompt_tokens=3, completion_tokens=5, reasoning_tokens=2)))
    assert parsed == {
        "id": ID,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "choices": [],
        "usage": {
            "prompt_tokens": 3,
            "completion_tokens": 5,
            "total_tokens": 8,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 2},
        },
    }


def test_envelope_is_identical_across_chunks() -> None:
    renderer = ChunkRenderer(ID, CREATED, MODEL, include_usage=True)
    events = [
        renderer.role(),
        renderer.reasoning("r"),
        renderer.content("c"),
        renderer.finish("stop"),
        renderer.usage(Usage(1, 1, 0)),
    ]
    envelopes = {tuple(parse(e)[k] for k in ("id", "object", "created", "model")) for e in events}
    assert envelopes == {(ID, "chat.completion.chunk", CREATED, MODEL)}


@pytest.mark.parametrize(
    "text",
    [
        'say "hi"',
        "back\\slash",
        "two\n\nnewlines",
        "carriage\r\nreturn",
        "tab\tand \x00 nul \x1f unit separator",
        "line\u2028separator\u2029",
        "你好，世界 🌏",
        "</script><script>alert(1)</script>",
        "data: [DONE]\n\n",
    ],
)
def test_special_characters_round_trip(text: str) -> None:
    model = f'kimi"{text}'
    completion_id = f"chatcmpl-{text}"
    renderer = ChunkRenderer(completion_id, CREATED, model, include_usage=True)
    for event, key in ((renderer.content(text), "content"), (renderer.reasoning(text), "reasoning_content")):
        parsed = parse(event)
        assert parsed["choices"][0]["delta"] == {key: text}
        assert parsed["id"] == completion_id
        assert parsed["model"] == model
    assert parse(renderer.usage(Usage(1, 2, 0)))["model"] == model
    assert parse(renderer.finish("stop"))["id"] == completion_id


def test_done_and_headers() -> None:
    assert DONE == b"data: [DONE]\n\n"
    assert STREAM_HEADERS["Content-Type"] == "text/event-stream; charset=utf-8"
    assert STREAM_HEADERS["Cache-Control"] == "no-cache"


def test_usage_object() -> None:
    assert usage_object(Usage(0, 0, 0)) == {
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def test_error_event_is_an_openai_error_and_redacted() -> None:
    token = mint_jwt({"typ": "access", "sub": "u"})
    parsed = parse(error_event(RateLimited(f"slow down {token}", retry_after=3)))
    assert parsed == {
        "error": {
            "message": f"slow down {token[:4]}…{token[-4:]}",
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    generic = parse(error_event(GatewayError("boom", param="x")))
    assert generic == {"error": {"message": "boom", "type": "server_error", "param": "x", "code": "internal_error"}}

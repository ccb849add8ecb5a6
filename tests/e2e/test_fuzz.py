"""Property-based requests against the real gateway (and emulator) on a loopback socket: whatever arrives, the answer
is never a 5xx, never a hang, and every error is an OpenAI error object that does not quote the caller's credential.

The requests are written to the socket by hand, so they can carry what HTTP clients refuse to send: bytes that are
not UTF-8 in headers, control characters, broken multipart bodies, malformed request lines. Over 10,000 are sent
in all (the `max_examples` below add up to that).
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.rawhttp import ThreadedGateway, exchange, request_bytes, split_response, threaded_gateway

# aiohttp warns (and then ignores the parameter) on a broken `filename*`, which the multipart cases send on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.multipart.BadContentDispositionParam")

_FUZZ = settings(
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)

_PATHS = [
    "/v1/chat/completions",
    "/chat/completions",
    "/v1/responses",
    "/v1/responses/resp_1",
    "/v1/models",
    "/v1/models/kimi-k2",
    "/v1/files",
    "/v1/files/file-1",
    "/token/check",
    "/ping",
    "/healthz",
    "/",
    "/admin/accounts",
]
_METHODS = ["GET", "POST", "DELETE", "PUT", "PATCH", "OPTIONS", "HEAD"]
_MODELS = ["kimi", "kimi-k2", "kimi-search", "kimi-thinking", "kimi-k2-research", "gpt-4o", ""]
_ROLES = ["system", "developer", "user", "assistant", "tool", "function", "other"]
_PART_TYPES = ["text", "image_url", "file", "refusal", "input_audio", "input_text", "input_image", "output_text"]

json_leaf = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=12)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _json(value: Any) -> bytes:
    # The standard library's encoder, which (unlike orjson) writes integers beyond 64 bits.
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the plausible value, sometimes any JSON value instead: the edges of every field get tried."""
    return st.one_of(strategy, strategy, strategy, json_value)


_url = st.sampled_from(
    ["data:text/plain;base64,aGVsbG8=", "data:image/png;base64,!!", "http://", "ftp://x/y", "not a url", ""]
)
_part = st.fixed_dictionaries(
    {"type": _maybe(st.sampled_from(_PART_TYPES))},
    optional={
        "text": _maybe(st.text(max_size=20)),
        "image_url": _maybe(st.fixed_dictionaries({"url": _maybe(_url)})),
        "file": _maybe(
            st.fixed_dictionaries(
                {}, optional={"file_id": _maybe(st.text(max_size=8)), "file_data": _maybe(_url), "filename": json_value}
            )
        ),
        "file_url": _maybe(st.fixed_dictionaries({"url": _maybe(_url)})),
    },
)
_message = st.fixed_dictionaries(
    {"role": _maybe(st.sampled_from(_ROLES))},
    optional={
        "content": _maybe(st.text(max_size=30) | st.lists(_maybe(_part), max_size=3)),
        "name": json_value,
        "tool_calls": _maybe(
            st.lists(
                st.fixed_dictionaries(
                    {"id": _maybe(st.text(max_size=6)), "type": _maybe(st.just("function"))},
                    optional={
                        "function": _maybe(
                            st.fixed_dictionaries(
                                {"name": _maybe(st.text(max_size=6)), "arguments": _maybe(st.text(max_size=10))}
                            )
                        )
                    },
                ),
                max_size=2,
            )
        ),
        "tool_call_id": json_value,
    },
)
_schema = st.fixed_dictionaries(
    {"type": _maybe(st.sampled_from(["object", "string", "array", "integer", "number", "boolean", "null"]))},
    optional={
        "properties": _maybe(st.dictionaries(st.text(max_size=5), json_value, max_size=2)),
        "required": _maybe(st.lists(st.text(max_size=5), max_size=2)),
        "enum": json_value,
        "items": json_value,
        "pattern": _maybe(st.sampled_from(["^a+$", "(", "[a-z]{2,}", "\\d"])),
        "$ref": json_value,
        "anyOf": json_value,
    },
)
_tool = st.fixed_dictionaries(
    {"type": _maybe(st.sampled_from(["function", "web_search", "namespace", "custom"]))},
    optional={
        "function": _maybe(
            st.fixed_dictionaries(
                {"name": _maybe(st.text(string.ascii_letters + "_", min_size=1, max_size=8))},
                optional={"parameters": _maybe(_schema), "strict": json_value, "description": json_value},
            )
        ),
        "name": json_value,
        "parameters": _maybe(_schema),
    },
)
_chat_body = st.fixed_dictionaries(
    {"model": _maybe(st.sampled_from(_MODELS)), "messages": _maybe(st.lists(_maybe(_message), max_size=3))},
    optional={
        "stream": _maybe(st.booleans()),
        "stream_options": _maybe(st.fixed_dictionaries({"include_usage": _maybe(st.booleans())})),
        "tools": _maybe(st.lists(_maybe(_tool), max_size=2)),
        "tool_choice": _maybe(st.sampled_from(["auto", "none", "required"]) | st.just({"type": "function"})),
        "functions": json_value,
        "response_format": _maybe(
            st.fixed_dictionaries(
                {"type": _maybe(st.sampled_from(["text", "json_object", "json_schema"]))},
                optional={"json_schema": _maybe(st.fixed_dictionaries({"name": json_value, "schema": _schema}))},
            )
        ),
        "max_tokens": json_value,
        "max_completion_tokens": json_value,
        "reasoning_effort": json_value,
        "stop": json_value,
        "n": json_value,
        "conversation_id": json_value,
        "use_search": json_value,
    },
)
_input_item = st.fixed_dictionaries(
    {"type": _maybe(st.sampled_from(["message", "function_call", "function_call_output", "reasoning"]))},
    optional={
        "role": _maybe(st.sampled_from(_ROLES)),
        "content": _maybe(st.text(max_size=10) | st.lists(_maybe(_part), max_size=2)),
        "call_id": json_value,
        "output": json_value,
        "name": json_value,
        "arguments": json_value,
    },
)
_responses_body = st.fixed_dictionaries(
    {"model": _maybe(st.sampled_from(_MODELS)), "input": _maybe(st.text(max_size=20) | st.lists(_input_item))},
    optional={
        "stream": _maybe(st.booleans()),
        "instructions": json_value,
        "tools": _maybe(st.lists(_maybe(_tool), max_size=2)),
        "tool_choice": json_value,
        "text": _maybe(st.fixed_dictionaries({"format": _maybe(_schema)})),
        "previous_response_id": json_value,
        "store": json_value,
        "max_output_tokens": json_value,
    },
)

# Header values as bytes: printable, Latin-1, invalid UTF-8, NUL and other controls (never CR/LF, which would end
# the header; those are covered by `_raw_heads`).
_header_bytes = st.binary(max_size=24).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
_AUTH_KINDS = ["good", "bytes", "many", "key", "none"]


def _auth_header(kind: str, good: str, raw: bytes, count: int) -> list[tuple[bytes, bytes]]:
    if kind == "good":
        return [(b"Authorization", b"Bearer " + good.encode())]
    if kind == "bytes":
        return [(b"Authorization", b"Bearer " + raw)]
    if kind == "many":
        return [(b"Authorization", b"Bearer " + b",".join(b"tok%d" % i for i in range(count)))]
    if kind == "key":
        return [(b"Authorization", b"Bearer kfa-" + raw.hex().encode())]
    return []


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ThreadedGateway, str]]:
    data: Path = tmp_path_factory.mktemp("fuzz")
    with threaded_gateway(data, capacity_wait_s=1.0, max_request_bytes=256 * 1024) as gateway:
        assert gateway.emulator is not None
        account = gateway.emulator.create_account("fuzz")
        yield gateway, account.refresh_token


def check(raw: bytes, method: str, secret: bytes) -> None:
    assert raw, "the gateway closed the connection without an answer"
    response = split_response(raw)
    assert response.status < 500, (response.status, response.body[:300])
    if len(secret) >= 8:
        assert secret not in response.body, "the caller's credential was echoed"
    if response.status >= 400 and method != "HEAD":
        assert response.headers.get("content-type", "").startswith("application/json"), response.body[:200]
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}, error
        assert isinstance(error["message"], str) and error["message"]
        assert isinstance(error["type"], str)


def _send(port: int, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    secret = next((value[7:] for name, value in headers if name == b"Authorization"), b"")
    check(exchange(port, request_bytes(method, path, headers, body)), method, secret)


@settings(_FUZZ, max_examples=3500)
@given(
    body=_chat_body,
    auth=st.sampled_from(_AUTH_KINDS),
    raw=_header_bytes,
    count=st.integers(0, 60),
    path=st.sampled_from(["/v1/chat/completions", "/chat/completions"]),
)
def test_chat_completions_inputs(
    fuzzed: tuple[ThreadedGateway, str], body: dict[str, Any], auth: str, raw: bytes, count: int, path: str
) -> None:
    gateway, good = fuzzed
    headers = [(b"Content-Type", b"application/json"), *_auth_header(auth, good, raw, count)]
    _send(gateway.port, "POST", path, headers, _json(body))


@settings(_FUZZ, max_examples=2500)
@given(body=_responses_body, auth=st.sampled_from(_AUTH_KINDS), raw=_header_bytes, count=st.integers(0, 40))
def test_responses_inputs(
    fuzzed: tuple[ThreadedGateway, str], body: dict[str, Any], auth: str, raw: bytes, count: int
) -> None:
    gateway, good = fuzzed
    headers = [(b"Content-Type", b"application/json"), *_auth_header(auth, good, raw, count)]
    _send(gateway.port, "POST", "/v1/responses", headers, _json(body))


_path_tail = st.text(string.ascii_letters + string.digits + "%/._-~?=&", max_size=16)


@settings(_FUZZ, max_examples=2500)
@given(
    method=st.sampled_from(_METHODS),
    path=st.sampled_from(_PATHS),
    tail=_path_tail | st.sampled_from(["%ff", "%0d%0aX-Injected:%201", "%00", "/%c3%28", "?limit=x&after=%ff"]),
    content_type=st.sampled_from(
        [b"application/json", b"text/plain", b"multipart/form-data", b"multipart/form-data; boundary=", b"\xff"]
    ),
    auth=st.sampled_from(_AUTH_KINDS),
    raw=_header_bytes,
    count=st.integers(0, 40),
    body=st.binary(max_size=64) | json_value.map(_json),
    encoding=st.sampled_from([b"", b"", b"gzip", b"deflate", b"br", b"identity", b"x-unknown"]),
)
def test_any_route_any_body(
    fuzzed: tuple[ThreadedGateway, str],
    method: str,
    path: str,
    tail: str,
    content_type: bytes,
    auth: str,
    raw: bytes,
    count: int,
    body: bytes,
    encoding: bytes,
) -> None:
    gateway, good = fuzzed
    headers = [(b"Content-Type", content_type), *_auth_header(auth, good, raw, count)]
    if encoding:
        headers.append((b"Content-Encoding", encoding))
    _send(gateway.port, method, path + tail, headers, body)


@settings(_FUZZ, max_examples=1000)
@given(token=json_value | st.text(max_size=30), extra=st.sampled_from(["", "\r\n", "\n", "\x00", "\u2028", " \t"]))
def test_token_check_inputs(fuzzed: tuple[ThreadedGateway, str], token: Any, extra: str) -> None:
    gateway, _ = fuzzed
    if isinstance(token, str):
        token = extra + token + extra
    body = _json({"token": token})
    _send(gateway.port, "POST", "/token/check", [(b"Content-Type", b"application/json")], body)


_part_header = st.sampled_from(
    [
        b'Content-Disposition: form-data; name="file"; filename="a.txt"',
        b'Content-Disposition: form-data; name="purpose"',
        b"Content-Disposition: form-data",
        b"Content-Disposition: form-data; name=\"file\"; filename*=utf-8''%ff",
        b"Content-Disposition: attachment; name=",
        b"Content-Type: multipart/mixed; boundary=inner",
        b"Content-Transfer-Encoding: base64",
        b"Content-Encoding: gzip",
        b"\xff\xfe: \x00",
        b"",
    ]
)
_multipart_part = st.tuples(st.lists(_part_header, max_size=3), st.binary(max_size=40))


@settings(_FUZZ, max_examples=1000)
@given(
    boundary=st.sampled_from([b"b0undary", b"", b'"quoted"', b"\xff", b"x" * 80]),
    parts=st.lists(_multipart_part, max_size=3),
    close=st.booleans(),
    noise=st.binary(max_size=16),
)
def test_files_multipart_inputs(
    fuzzed: tuple[ThreadedGateway, str],
    boundary: bytes,
    parts: list[tuple[list[bytes], bytes]],
    close: bool,
    noise: bytes,
) -> None:
    gateway, good = fuzzed
    body = noise
    for part_headers, content in parts:
        body += b"--" + boundary + b"\r\n" + b"\r\n".join(part_headers) + b"\r\n\r\n" + content + b"\r\n"
    if close:
        body += b"--" + boundary + b"--\r\n"
    headers = [
        (b"Content-Type", b"multipart/form-data; boundary=" + boundary),
        (b"Authorization", b"Bearer " + good.encode()),
    ]
    _send(gateway.port, "POST", "/v1/files", headers, body)


_raw_heads = st.sampled_from(
    [
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer secret-token-123456\x00\r\n\r\n",
        b"GET / HTTP/1.1\r\nAuthorization: Bearer secret-token-123456\r\n folded\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GARBAGE\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nX-Long: " + b"b" * 9000 + b"\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET  / HTTP/1.1\r\n\r\n",
    ]
)


@settings(_FUZZ, max_examples=200)
@given(head=_raw_heads, prefix=st.binary(max_size=4))
def test_malformed_http(fuzzed: tuple[ThreadedGateway, str], head: bytes, prefix: bytes) -> None:
    gateway, _ = fuzzed
    check(exchange(gateway.port, prefix + head), "GET", b"secret-token-123456")

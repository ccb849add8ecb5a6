"""Regression tests for the inputs that gave a 500 or aiohttp's plain-text 400 (some quoting the bearer token): each
now gets a 4xx OpenAI error object that quotes nothing the client sent in its headers."""

from __future__ import annotations

from urllib.parse import urlsplit

import orjson
import pytest

from kimi_free_api.emulator import Account
from tests.e2e.rawhttp import RawResponse, request_bytes, split_response, timed_exchange
from tests.e2e.support import Gateway

SECRET = b"secret-token-0123456789"


async def _send(gateway: Gateway, data: bytes) -> RawResponse:
    port = urlsplit(gateway.url).port
    assert port is not None
    response = split_response(b"".join(piece for _, piece in await timed_exchange(port, data)))
    assert response.headers["content-type"].startswith("application/json")
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert SECRET not in response.body
    return response


def _auth(account: Account) -> tuple[bytes, bytes]:
    return b"Authorization", b"Bearer " + account.refresh_token.encode()


@pytest.mark.parametrize("kind", [["text"], {"t": 1}])
async def test_unhashable_content_part_type(gateway: Gateway, account: Account, kind: object) -> None:
    body = {"model": "kimi", "messages": [{"role": "user", "content": [{"type": kind, "text": "hi"}]}]}
    request = request_bytes("POST", "/v1/chat/completions", [_auth(account)], orjson.dumps(body))
    response = await _send(gateway, request)
    assert response.status == 400
    assert response.json()["error"]["param"] == "messages[0].content[0]"
    assert response.json()["error"]["code"] == "unsupported_content"


@pytest.mark.parametrize(
    "value", [b"Bearer \xff\xfe" + SECRET, b"Bearer " + SECRET + b"\xc3\x28", b"Bearer " + SECRET + b"\xa0"]
)
async def test_authorization_that_is_not_printable_ascii(gateway: Gateway, value: bytes) -> None:
    body = orjson.dumps({"model": "kimi", "messages": [{"role": "user", "content": "hi"}]})
    response = await _send(gateway, request_bytes("POST", "/v1/chat/completions", [(b"Authorization", value)], body))
    assert response.status == 401
    assert response.json()["error"]["type"] == "authentication_error"


@pytest.mark.parametrize("token", ["abc\r\ndef", "abc\ndef", "a\x00b", "tok en"])
async def test_token_check_with_control_characters(gateway: Gateway, token: str) -> None:
    response = await _send(gateway, request_bytes("POST", "/token/check", [], orjson.dumps({"token": token})))
    assert response.status == 400
    assert response.json()["error"]["param"] == "token"


@pytest.mark.parametrize(
    "body",
    [
        b"no boundary anywhere",
        b'--b0\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nunterminated',
        b"--b0\r\n\xff\xfe: \x00\r\n\r\nx\r\n--b0--\r\n",
        b'--b0\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n',
    ],
)
async def test_files_with_a_malformed_multipart_body(gateway: Gateway, account: Account, body: bytes) -> None:
    headers = [_auth(account), (b"Content-Type", b"multipart/form-data; boundary=b0")]
    response = await _send(gateway, request_bytes("POST", "/v1/files", headers, body))
    assert response.status == 400
    assert response.json()["error"]["code"] in ("invalid_multipart", "missing_required_parameter")


@pytest.mark.parametrize("encoding", [b"gzip", b"deflate"])
async def test_body_whose_content_encoding_is_broken(gateway: Gateway, account: Account, encoding: bytes) -> None:
    body = b"neither gzip nor deflate"
    headers = [_auth(account), (b"Content-Encoding", encoding)]
    response = await _send(gateway, request_bytes("POST", "/v1/chat/completions", headers, body))
    assert response.status == 400
    assert response.json()["error"]["code"] == "invalid_body"


@pytest.mark.parametrize(
    "head",
    [
        b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + SECRET + b"\x00\r\n\r\n",
        b"GET /v1/models HTTP/1.1\r\nHost: x\r\nBad Header: " + SECRET + b"\r\n\r\n",
        b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Long: " + SECRET * 500 + b"\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: " + SECRET + b"\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + SECRET,
    ],
)
async def test_requests_aiohttp_cannot_parse(gateway: Gateway, head: bytes) -> None:
    response = await _send(gateway, head)
    assert response.status == 400
    assert response.json()["error"]["code"] == "malformed_request"

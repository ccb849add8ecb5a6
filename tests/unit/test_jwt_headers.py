"""Reading JWT claims (tokens minted here, at run time) and the identity headers derived from them."""

from __future__ import annotations

import re
from typing import Any

import pytest

from kimi_free_api.upstream import jwt
from kimi_free_api.upstream.headers import USER_AGENT, browser_headers, identity_headers

from .tokens import b64url, mint_jwt

ACCESS_CLAIMS: dict[str, Any] = {
    "iss": "user-center",
    "exp": 1_900_000_000,
    "iat": 1_897_408_000,
    "jti": "d3rglnb12h610c3cc3j0",
    "typ": "access",
    "app_id": "kimi",
    "sub": "cnndivilnl96vah411dg",
    "space_id": "cnndivilnl96vah411e0",
    "abstract_user_id": "cnndivilnl96vah411eg",
    "device_id": "7431234567890123456",
    "ssid": "1731234567890123456",
    "region": "overseas",
    "membership": {"level": 10},
}


def test_claims_round_trip() -> None:
    assert jwt.claims(mint_jwt(ACCESS_CLAIMS)) == ACCESS_CLAIMS


@pytest.mark.parametrize("sub", ["a", "ab", "abc", "abcd", "你好", "x" * 100])
def test_claims_with_every_padding_length(sub: str) -> None:
    token = mint_jwt({"sub": sub})
    assert "=" not in token
    assert jwt.claims(token) == {"sub": sub}


def test_claims_do_not_verify_the_signature() -> None:
    assert jwt.claims(mint_jwt({"typ": "refresh"}, signature=b"")) == {"typ": "refresh"}


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not a token",
        "abc.def.ghi",
        "eyJhbGciOiJIUzUxMiJ9.only-two",
        "eyJ.a.b.c",
        "eyJhbGciOiJIUzUxMiJ9.!!!!.sig",
        "eyJhbGciOiJIUzUxMiJ9." + b64url(b"not json") + ".sig",
        "eyJhbGciOiJIUzUxMiJ9." + b64url(b"[1,2,3]") + ".sig",
        "eyJhbGciOiJIUzUxMiJ9." + b64url(b'"a string"') + ".sig",
        "eyJhbGciOiJIUzUxMiJ9." + b64url(b"\xff\xfe{}") + ".sig",
        "eyJhbGciOiJIUzUxMiJ9.a.sig",
    ],
)
def test_claims_of_non_jwts_are_empty(token: str) -> None:
    assert jwt.claims(token) == {}


def test_claims_need_the_json_header_prefix() -> None:
    token = mint_jwt({"sub": "x"})
    assert jwt.claims("x" + token[1:]) == {}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [({"typ": "access"}, True), ({"typ": "refresh"}, False), ({}, False), ({"typ": "ACCESS"}, False)],
)
def test_is_access_token(payload: dict[str, Any], expected: bool) -> None:
    assert jwt.is_access_token(payload) is expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"exp": 1_900_000_000}, 1_900_000_000.0),
        ({"exp": 1.5}, 1.5),
        ({"exp": "1900000000"}, None),
        ({"exp": None}, None),
        ({}, None),
    ],
)
def test_expiry(payload: dict[str, Any], expected: float | None) -> None:
    result = jwt.expiry(payload)
    assert result == expected
    if result is not None:
        assert isinstance(result, float)


def test_identity_headers_from_claims() -> None:
    assert identity_headers(jwt.claims(mint_jwt(ACCESS_CLAIMS))) == {
        "X-Msh-Device-Id": "7431234567890123456",
        "X-Msh-Session-Id": "1731234567890123456",
        "X-Traffic-Id": "cnndivilnl96vah411dg",
    }


def test_identity_headers_stringify_numeric_claims() -> None:
    headers = identity_headers({"device_id": 7000000000000000001, "ssid": 17, "sub": 42})
    assert headers == {"X-Msh-Device-Id": "7000000000000000001", "X-Msh-Session-Id": "17", "X-Traffic-Id": "42"}


@pytest.mark.parametrize("claims", [{}, {"device_id": "", "ssid": None, "sub": ""}])
def test_identity_headers_without_claims_are_random_in_the_web_client_shape(claims: dict[str, Any]) -> None:
    headers = identity_headers(claims)
    assert set(headers) == {"X-Msh-Device-Id", "X-Msh-Session-Id"}
    assert re.fullmatch(r"7\d{18}", headers["X-Msh-Device-Id"])
    assert re.fullmatch(r"17\d{17}", headers["X-Msh-Session-Id"])
    others = {identity_headers(claims)["X-Msh-Device-Id"] for _ in range(5)}
    assert len(others | {headers["X-Msh-Device-Id"]}) > 1


def test_browser_headers() -> None:
    headers = browser_headers("https://www.kimi.com", "zh-CN", "Asia/Shanghai")
    assert headers["Accept-Language"] == "zh-CN,zh;q=0.9,en;q=0.8"
    assert headers["Origin"] == "https://www.kimi.com"
    assert headers["Referer"] == "https://www.kimi.com/"
    assert headers["R-Timezone"] == "Asia/Shanghai"
    assert headers["X-Language"] == "zh-CN"
    assert headers["X-Msh-Platform"] == "web"
    assert headers["User-Agent"] == USER_AGENT
    assert "Authorization" not in headers
    assert browser_headers("http://127.0.0.1:9", "en", "UTC")["Accept-Language"] == "en,en;q=0.9,en;q=0.8"


def test_x_msh_version_is_sent_when_set() -> None:
    assert browser_headers("https://www.kimi.com", "zh-CN", "Asia/Shanghai", "2.0.0")["X-Msh-Version"] == "2.0.0"
    assert "X-Msh-Version" not in browser_headers("https://www.kimi.com", "zh-CN", "Asia/Shanghai")

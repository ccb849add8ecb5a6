"""Minting JWT-shaped test tokens at run time (never a literal token in a file)."""

from __future__ import annotations

import base64
from typing import Any

import orjson


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint_jwt(
    claims: dict[str, Any], header: dict[str, Any] | None = None, signature: bytes = b"not-a-signature"
) -> str:
    head = header if header is not None else {"alg": "HS512", "typ": "JWT"}
    return ".".join((b64url(orjson.dumps(head)), b64url(orjson.dumps(claims)), b64url(signature)))

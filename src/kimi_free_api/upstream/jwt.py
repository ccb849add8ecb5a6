"""Reading (never verifying) the claims of Kimi's JWTs: token type, expiry and identity for request headers."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson


def claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, or {} for anything that is not one."""
    parts = token.split(".")
    if len(parts) != 3 or not token.startswith("eyJ"):
        return {}
    segment = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(segment))
    except (binascii.Error, ValueError):
        return {}
    return payload if isinstance(payload, dict) else {}


def is_access_token(payload: dict[str, Any]) -> bool:
    return payload.get("typ") == "access"


def expiry(payload: dict[str, Any]) -> float | None:
    exp = payload.get("exp")
    return float(exp) if isinstance(exp, int | float) else None

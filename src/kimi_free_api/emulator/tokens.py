"""HS256 JWTs shaped like Kimi's, signed with a key that lives only as long as one Emulator."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Any

import orjson

from kimi_free_api.emulator.ids import digits, new_id

REFRESH_TTL_S = 90 * 24 * 3600  # Kimi's refresh tokens last 90 days (protocol document §1.2)
_HEADER = orjson.dumps({"alg": "HS256", "typ": "JWT"})


def _b64(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenMint:
    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def _signature(self, signing_input: bytes) -> bytes:
        return hmac.new(self._key, signing_input, hashlib.sha256).digest()

    def sign(self, claims: dict[str, Any]) -> str:
        signing_input = _b64(_HEADER) + b"." + _b64(orjson.dumps(claims))
        return (signing_input + b"." + _b64(self._signature(signing_input))).decode("ascii")

    def claims(self, token: str) -> dict[str, Any] | None:
        """The claims of a token this mint signed (expired or not), or None for anything else."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            signature = _unb64(parts[2])
            claims = orjson.loads(_unb64(parts[1]))
        except ValueError:  # bad base64 or JSON
            return None
        signing_input = f"{parts[0]}.{parts[1]}".encode()
        if not hmac.compare_digest(signature, self._signature(signing_input)) or not isinstance(claims, dict):
            return None
        return claims

    def _mint(self, user_id: str, typ: str, ttl_s: int, extra: dict[str, Any]) -> str:
        now = int(time.time())
        claims = {"iss": "user-center", "typ": typ, "sub": user_id, "iat": now, "exp": now + ttl_s}
        return self.sign({**claims, "jti": new_id(), **extra})

    def access_token(self, user_id: str, ttl_s: int, generation: int = 0) -> str:
        """`generation`: the user's session generation; revoking access tokens starts a new one."""
        extra = {
            "app_id": "kimi",
            "gen": generation,
            "device_id": digits(user_id, "7", 19),
            "ssid": digits("session:" + user_id, "17", 19),
        }
        return self._mint(user_id, "access", ttl_s, extra)

    def refresh_token(self, user_id: str) -> str:
        return self._mint(user_id, "refresh", REFRESH_TTL_S, {})


def is_expired(claims: dict[str, Any]) -> bool:
    expiry = claims.get("exp")
    return not isinstance(expiry, int) or expiry <= time.time()

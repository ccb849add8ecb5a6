"""The Kimi token in what an operator pasted: a bare token, or the browser's whole localStorage dump.

Kimi's web app keeps `refresh_token` and `access_token` in localStorage (docs/kimi-web-protocol.md §1.2). A dump
copied from DevTools or `JSON.stringify(localStorage)` is a JSON object whose values are often JSON-encoded strings
themselves, and DevTools' parsed view shows a JWT as the array of its three segments.
"""

from __future__ import annotations

import json

from kimi_free_api.core.errors import InvalidRequest

# The refresh token first: an access token lives 15 minutes and cannot be renewed.
_PREFERRED = ("refresh_token", "refreshToken", "access_token", "accessToken")


def token_from_paste(text: str) -> str:
    pasted = text.strip()
    if not pasted:
        raise InvalidRequest("Paste a Kimi refresh token or the localStorage dump of kimi.com.", param="token")
    if pasted[0] in "{[":
        try:
            dump = json.loads(pasted)
        except json.JSONDecodeError as exc:
            raise InvalidRequest(f"The pasted text is not valid JSON: {exc.msg}.", param="token") from None
        token = _from_dump(dump)
        if not token:
            raise InvalidRequest("The pasted localStorage dump has no refresh_token or access_token.", param="token")
        return token
    pasted = pasted.strip("\"'")
    if any(char.isspace() for char in pasted):
        raise InvalidRequest("A token has no spaces: paste the token alone or the whole JSON dump.", param="token")
    return pasted


def _from_dump(dump: object) -> str:
    if not isinstance(dump, dict):
        return ""
    for name in _PREFERRED:
        token = _token_value(dump.get(name))
        if token:
            return token
    return ""


def _token_value(value: object) -> str:
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return ".".join(value)  # DevTools' parsed view of a JWT
    if not isinstance(value, str):
        return ""
    value = value.strip()
    if value.startswith(('"', "[")):  # stored JSON-encoded
        try:
            return _token_value(json.loads(value))
        except ValueError:
            return ""
    return value

"""Small checks shared by the request validators: every refusal names the field, as OpenAI's errors do."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kimi_free_api.core.errors import InvalidRequest
from kimi_free_api.core.request import Role


def fail(message: str, param: str | None, code: str = "invalid_value") -> InvalidRequest:
    return InvalidRequest(message, param=param, code=code)


def optional(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], what: str, at: str = "") -> Any:
    """`obj[key]` when absent, null or of `kind`; else a 400 naming `at.key` (a bool is never a number here)."""
    value = obj.get(key)
    if value is not None and (not isinstance(value, kind) or (kind is not bool and isinstance(value, bool))):
        param = f"{at}.{key}" if at else key
        raise fail(f"`{param}` must be {what}.", param, "invalid_type")
    return value


def message_role(raw: Any, where: str, roles: Mapping[str, Role], allowed: str) -> Role:
    """The role of the message `raw` at `where`, by its name in `roles`; else a 400 saying it must be `allowed`."""
    if not isinstance(raw, Mapping):
        raise fail(f"`{where}` must be an object.", where, "invalid_type")
    raw_role = raw.get("role")
    role = roles.get(raw_role) if isinstance(raw_role, str) else None
    if role is None:
        raise fail(f"`{where}.role` must be {allowed}; got {raw_role!r}.", f"{where}.role")
    return role

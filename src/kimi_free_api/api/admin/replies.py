"""The admin API's bodies: JSON in (an object, its fields checked by name) and JSON out."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from kimi_free_api.api.body import json_body
from kimi_free_api.api.fields import fail, optional
from kimi_free_api.core.access.callers import NO_LIMITS, KeyLimits

# Larger limits than these are typing mistakes, not limits.
_MAX_LIMIT = 1_000_000


def reply(data: object, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps(data),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


async def object_body(request: web.Request) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise fail("The request body must be a JSON object.", None, "invalid_type")
    return body


def text_field(body: dict[str, Any], name: str, default: str = "", max_length: int = 200) -> str:
    value = optional(body, name, str, "a string")
    if value is None:
        return default
    value = value.strip()
    if len(value) > max_length:
        raise fail(f"`{name}` is longer than {max_length} characters.", name)
    return str(value)


def limits_field(body: dict[str, Any], current: KeyLimits = NO_LIMITS) -> KeyLimits:
    """The limits in `body` (rpm, concurrent, models), each absent one kept from `current`."""
    counts: dict[str, int] = {}
    for name in ("rpm", "concurrent"):
        value = optional(body, name, int, "a whole number (0 for no limit)")
        if value is not None and not 0 <= value <= _MAX_LIMIT:
            raise fail(f"`{name}` must be between 0 (no limit) and {_MAX_LIMIT}.", name)
        counts[name] = getattr(current, name) if value is None else value
    models = body.get("models")
    if models is None:
        allowed = current.models
    elif isinstance(models, list) and all(isinstance(m, str) for m in models):
        allowed = tuple(dict.fromkeys(m.strip() for m in models if m.strip()))
    elif isinstance(models, str):
        allowed = tuple(dict.fromkeys(m.strip() for m in models.split(",") if m.strip()))
    else:
        raise fail("`models` must be a list of model names (empty: every model).", "models", "invalid_type")
    if any("," in model for model in allowed):
        raise fail("A model name cannot contain a comma.", "models")
    return KeyLimits(rpm=counts["rpm"], concurrent=counts["concurrent"], models=allowed)


def limits_json(limits: KeyLimits) -> dict[str, object]:
    return {"rpm": limits.rpm, "concurrent": limits.concurrent, "models": list(limits.models)}

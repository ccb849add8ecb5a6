"""camelCase and snake_case field names: Connect's JSON codec accepts both, and the emulator can answer in either."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

_HUMP = re.compile(r"(?<=[a-z0-9])([A-Z])")


@cache
def snake(name: str) -> str:
    return _HUMP.sub(r"_\1", name).lower()


@cache
def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def pick(obj: Mapping[str, Any], name: str) -> Any:
    """The value of field `name` (given in snake_case) under either spelling."""
    value = obj.get(name)
    return obj.get(camel(name)) if value is None else value


def snake_keys(value: Any) -> Any:
    """`value` with every object key in snake_case; `mask` values are field paths, so they follow too."""
    if isinstance(value, dict):
        return {
            snake(key): ".".join(map(snake, item.split("."))) if key == "mask" else snake_keys(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [snake_keys(item) for item in value]
    return value

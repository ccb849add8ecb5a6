"""Anthropic `tools` and `tool_choice` → the core's `ToolSet`.

Custom tools (`{"name", "description"?, "input_schema"}`, `type` absent or `custom`) are offered to Kimi through the
same text protocol and checks as OpenAI function tools. Anthropic's own tools: `web_search_*` turns on Kimi's web
search; the others (bash, text editor, computer use, code execution, web fetch …) are accepted and not offered,
since nothing here could run them. `cache_control`, `defer_loading`, `strict` and the like are ignored.

`tool_choice`: `auto` → auto, `any` → some tool must be called, `tool` → the named one must be, `none` → none may
be; `disable_parallel_tool_use` allows at most one call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kimi_free_api.api.fields import fail, optional
from kimi_free_api.api.tool_schemas import tool_set, unique
from kimi_free_api.core.guided.jsonschema import SchemaError, check_schema
from kimi_free_api.core.guided.tools import FunctionTool, ToolSet

# Anthropic's rule for tool names, widened to the dots and colons of namespaced (MCP-style) names.
_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_CHOICES = {"auto": "auto", "any": "required", "none": "none"}


@dataclass(slots=True, frozen=True)
class Tools:
    tools: ToolSet | None
    search: bool


def _custom(entry: Mapping[str, Any], at: str) -> FunctionTool:
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise fail(f"`{at}.name` must be 1-128 letters, digits, '_' or '-'; got {name!r}.", f"{at}.name")
    schema = entry.get("input_schema")
    if not isinstance(schema, Mapping):
        param = f"{at}.input_schema"
        raise fail(f"`{param}` is required: the JSON Schema of the tool's input.", param, "missing_required_parameter")
    try:
        check_schema(schema)
    except SchemaError as exc:
        param = f"{at}.input_schema"
        raise fail(f"`{param}` is not a usable JSON Schema: {exc}", param, "invalid_schema") from None
    description = optional(entry, "description", str, "a string", at)
    return FunctionTool(name=name, description=description or "", parameters=dict(schema))


def _choice(raw: Any) -> tuple[Any, bool]:
    """The choice in the shape `tool_set` reads, and whether parallel calls are allowed."""
    if raw is None:
        return "auto", True
    if not isinstance(raw, Mapping):
        raise fail("`tool_choice` must be an object with a `type`.", "tool_choice", "invalid_type")
    parallel = optional(raw, "disable_parallel_tool_use", bool, "a boolean", "tool_choice") is not True
    kind = raw.get("type")
    if kind == "tool":
        return {"type": "function", "name": raw.get("name")}, parallel
    if kind not in _CHOICES:
        message = f"`tool_choice.type` must be auto, any, tool or none; got {kind!r}."
        raise fail(message, "tool_choice.type", "unsupported_value")
    return _CHOICES[kind], parallel


def parse_tools(body: Mapping[str, Any]) -> Tools:
    raw = body.get("tools")
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise fail("`tools` must be an array.", "tools", "invalid_type")
    declared: list[FunctionTool] = []
    search = False
    for index, entry in enumerate(raw):
        at = f"tools[{index}]"
        if not isinstance(entry, Mapping):
            raise fail(f"`{at}` must be an object.", at, "invalid_type")
        kind = entry.get("type")
        if kind in (None, "custom"):
            declared.append(_custom(entry, at))
        elif isinstance(kind, str):
            search = search or kind.startswith("web_search")
        else:
            raise fail(f"`{at}.type` must be a string.", f"{at}.type", "invalid_type")
    choice, parallel = _choice(body.get("tool_choice"))
    return Tools(tool_set(unique(declared, "tools"), choice, parallel, flat=True), search)

"""Validating tool declarations, `tool_choice` and JSON-output formats, for chat completions and the Responses API.

The two APIs spell the same things differently: chat nests a function under `function` (`{"type": "function",
"function": {"name", …}}`), Responses flattens it (`{"type": "function", "name", …}`); chat's `response_format`
nests the schema under `json_schema`, Responses' `text.format` does not. Both parse into core/guided/tools.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from kimi_free_api.api.fields import fail, optional
from kimi_free_api.core.guided.jsonschema import SchemaError, check_schema
from kimi_free_api.core.guided.tools import ChoiceMode, FunctionTool, JsonOutput, ToolSet

# OpenAI allows [a-zA-Z0-9_-]{1,64}; dots and colons are let through for namespaced (MCP-style) names.
_TOOL_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_MODES: tuple[ChoiceMode, ...] = ("auto", "none", "required")


def _schema(value: Any, param: str) -> Mapping[str, Any] | None:
    if value is None:
        return None
    try:
        check_schema(value)
    except SchemaError as exc:
        raise fail(f"`{param}` is not a usable JSON Schema: {exc}", param, "invalid_schema") from None
    return dict(value)


def function_tool(spec: Mapping[str, Any], param: str, *, name: str | None = None) -> FunctionTool:
    """A function declaration: `{"name", "description"?, "parameters"?, "strict"?}`; `name` overrides the one in
    the spec (namespaced tools qualify it)."""
    raw_name = spec.get("name")
    if not isinstance(raw_name, str) or not _TOOL_NAME.fullmatch(raw_name):
        raise fail(
            f"`{param}.name` must be 1-128 letters, digits, '_', '-', '.' or ':'; got {raw_name!r}.",
            f"{param}.name",
        )
    description = optional(spec, "description", str, "a string", param)
    strict = optional(spec, "strict", bool, "a boolean", param)
    return FunctionTool(
        name=name or raw_name,
        description=description or "",
        parameters=_schema(spec.get("parameters"), f"{param}.parameters"),
        strict=bool(strict),
    )


def unique(tools: Sequence[FunctionTool], param: str) -> tuple[FunctionTool, ...]:
    seen: set[str] = set()
    for tool in tools:
        if tool.name in seen:
            raise fail(f"The tool name `{tool.name}` is declared twice.", param)
        seen.add(tool.name)
    return tuple(tools)


def _named(choice: Mapping[str, Any], flat: bool) -> Any:
    """The function named by a choice object: `{"name"}` (Responses) or `{"function": {"name"}}` (chat)."""
    if flat:
        return choice.get("name")
    function = choice.get("function")
    return function.get("name") if isinstance(function, Mapping) else None


def tool_set(
    tools: tuple[FunctionTool, ...], choice: Any, parallel: Any, *, flat: bool, legacy: bool = False
) -> ToolSet | None:
    """The declared tools with the client's `tool_choice` (`function_call` for legacy requests) applied."""
    if not tools:
        return None
    if parallel is not None and not isinstance(parallel, bool):
        raise fail("`parallel_tool_calls` must be a boolean.", "parallel_tool_calls", "invalid_type")
    param = "function_call" if legacy else "tool_choice"
    mode: ChoiceMode = "auto"
    forced = ""
    if isinstance(choice, str) and choice in _MODES:
        mode = choice
    elif isinstance(choice, Mapping) and (legacy or choice.get("type") == "function"):
        named = choice.get("name") if legacy else _named(choice, flat)
        if named not in {tool.name for tool in tools}:
            raise fail(f"`{param}` names {named!r}, which is not among the declared tools.", param)
        mode, forced = "function", named
    elif isinstance(choice, Mapping) and choice.get("type") == "allowed_tools":
        allowed = choice if flat else choice.get("allowed_tools")
        allowed = allowed if isinstance(allowed, Mapping) else {}
        names = {_named(entry, flat) for entry in allowed.get("tools") or () if isinstance(entry, Mapping)}
        tools = tuple(tool for tool in tools if tool.name in names)
        mode = "required" if allowed.get("mode") == "required" else "auto"
        if not tools:
            raise fail("`tool_choice.allowed_tools` names none of the declared tools.", param)
    elif choice is not None:
        raise fail(
            f"`{param}` must be none, auto, required, or name a declared function; got {choice!r}.",
            param,
            "unsupported_value",
        )
    return ToolSet(tools, mode, forced, parallel is not False and not legacy, legacy)


def json_output(spec: Any, param: str, *, flat: bool) -> JsonOutput | None:
    """`{"type": "text" | "json_object" | "json_schema", …}`; the schema sits under `json_schema` unless `flat`."""
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise fail(f"`{param}` must be an object.", param, "invalid_type")
    kind = spec.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return JsonOutput()
    if kind != "json_schema":
        raise fail(f"`{param}.type` {kind!r} is not supported (text, json_object, json_schema).", param)
    where = param if flat else f"{param}.json_schema"
    body = spec if flat else spec.get("json_schema")
    if not isinstance(body, Mapping):
        raise fail(f"`{where}` is required for the json_schema format.", where, "missing_required_parameter")
    name = body.get("name")
    strict = optional(body, "strict", bool, "a boolean", where)
    # No schema at all: any JSON value will do.
    schema = _schema(body.get("schema"), f"{where}.schema") or {}
    return JsonOutput(schema=schema, name=name if isinstance(name, str) else "", strict=bool(strict))


def chat_tool_set(body: Mapping[str, Any]) -> ToolSet | None:
    """`tools` + `tool_choice` + `parallel_tool_calls`, or the deprecated `functions` + `function_call`."""
    tools, functions = body.get("tools"), body.get("functions")
    for key, value in (("tools", tools), ("functions", functions)):
        if value is not None and not isinstance(value, list):
            raise fail(f"`{key}` must be an array.", key, "invalid_type")
    if tools and functions:
        raise fail("Send `tools` or the deprecated `functions`, not both.", "functions")
    declared: list[FunctionTool] = []
    for index, entry in enumerate(functions or tools or ()):
        where = f"functions[{index}]" if functions else f"tools[{index}]"
        if not isinstance(entry, Mapping):
            raise fail(f"`{where}` must be an object.", where, "invalid_type")
        if functions:
            declared.append(function_tool(entry, where))
            continue
        if entry.get("type", "function") != "function":
            raise fail(
                f"`{where}.type` {entry.get('type')!r} is not supported: only function tools can be called.",
                f"{where}.type",
                "unsupported_value",
            )
        function = entry.get("function")
        if not isinstance(function, Mapping):
            raise fail(f"`{where}.function` is required.", f"{where}.function", "missing_required_parameter")
        declared.append(function_tool(function, f"{where}.function"))
    if functions:
        return tool_set(unique(declared, "functions"), body.get("function_call"), None, flat=True, legacy=True)
    return tool_set(unique(declared, "tools"), body.get("tool_choice"), body.get("parallel_tool_calls"), flat=False)

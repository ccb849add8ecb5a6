"""Tool declarations as short as they can be while keeping what a call needs.

Agents that front MCP servers declare dozens of tools, each with long descriptions and schemas full of metadata
for humans; together they can exceed what one Kimi message holds. Every declaration loses the schema keywords
that never change a valid call (`title`, `examples`, `$schema`, `$comment`, …). When the declarations still
exceed `DECLARATIONS_BUDGET` characters, descriptions are cut to their first sentence (at most
`SHORT_DESCRIPTION` characters), the nested ones first, then the tools' own; last, the nested ones are dropped.
What is still too long after that travels in the history file (core/conversation/oversize.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from kimi_free_api.core.guided.tools import FunctionTool

# Above this many characters of declarations, descriptions are shortened (an eighth of a Kimi message).
DECLARATIONS_BUDGET = 25_000
SHORT_DESCRIPTION = 160

# Keywords that annotate a schema for humans or tooling: a call valid without them is valid with them.
_NOISE = frozenset({"title", "examples", "example", "$schema", "$id", "$comment", "deprecated", "readOnly"})
# Keywords whose value maps property names (data, not keywords) to schemas.
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})

Shorten = Callable[[str], str]


def first_sentence(text: str) -> str:
    text = " ".join(text.split())
    end = text.find(". ")
    if 0 <= end < SHORT_DESCRIPTION:
        return text[: end + 1]
    return text if len(text) <= SHORT_DESCRIPTION else text[: SHORT_DESCRIPTION - 1] + "…"


def _keep(text: str) -> str:
    return text


def compact_schema(schema: Any, describe: Shorten = _keep) -> Any:
    """`schema` without annotation keywords, its `description`s passed through `describe`."""
    if isinstance(schema, list):
        return [compact_schema(item, describe) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _NOISE:
            continue
        if key in _SCHEMA_MAPS and isinstance(value, Mapping):
            # Property names are data, not keywords: a property called "title" stays.
            out[key] = {name: compact_schema(sub, describe) for name, sub in value.items()}
        elif key == "description" and isinstance(value, str):
            short = describe(value)
            if short:
                out[key] = short
        elif key in ("enum", "const", "default", "required"):
            out[key] = value
        else:
            out[key] = compact_schema(value, describe)
    return out


def _drop(text: str) -> str:
    return ""


# Each step loses more: nested descriptions shortened, then the tools' own, then the nested ones dropped.
_STEPS: tuple[tuple[Shorten, Shorten], ...] = (
    (_keep, _keep),
    (_keep, first_sentence),
    (first_sentence, first_sentence),
    (first_sentence, _drop),
)


def _declaration(tool: FunctionTool, describe_tool: Shorten, describe_nested: Shorten) -> str:
    entry: dict[str, Any] = {"name": tool.name}
    if tool.description:
        entry["description"] = describe_tool(tool.description)
    parameters = tool.parameters if tool.parameters is not None else {"type": "object"}
    entry["parameters"] = compact_schema(parameters, describe_nested)
    return orjson.dumps(entry).decode()


def compact_declarations(tools: Sequence[FunctionTool], budget: int = DECLARATIONS_BUDGET) -> str:
    """One JSON line per tool: its name, description and argument schema, as short as `budget` asks."""
    for describe_tool, describe_nested in _STEPS:
        text = "\n".join(_declaration(tool, describe_tool, describe_nested) for tool in tools)
        if len(text) <= budget:
            break
    return text

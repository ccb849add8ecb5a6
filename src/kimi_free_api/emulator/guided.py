"""Plausible answers to prompts that ask for tool calls or JSON, for the demo (setting `guided_answers`).

A real Kimi reads the declarations a client puts in its prompt and answers in the form asked for; the echo answers
would only ever fail such a request. With `guided_answers` on, a prompt that declares tools in a `<tools>` block
(one JSON declaration per line: `name`, `parameters`) is answered with one call, in the element form the prompt
shows, whose arguments are built from the tool's JSON Schema; a prompt with an `# Answer format` section is
answered with a JSON value built from the schema given there (or a small object). Strings are taken from the
question where it offers a capitalised word ("weather in Paris" → "Paris").

What is answered, in order: a tool named as the one that must be called; else the first tool, unless the answer is
optional ("only when they help") and a tool result is the last thing in the conversation; else JSON if asked for;
else nothing special (None: the usual echo).
"""

from __future__ import annotations

import json
import re
from typing import Any

_TOOLS = re.compile(r"<tools>\n(.*?)\n</tools>", re.S)
_FORCED = re.compile(r"must call the tool `([^`]+)`")
_OPTIONAL = "only when they help"
_FORMAT = "# Answer format"
_SCHEMA = re.compile(r"JSON Schema[^:\n]*:\n\n(.+)")
_DIRECTIVES = re.compile(r"\n\n(?:# Tools|# Answer format|When you answer without)")
_USER = re.compile(r"<user[^>]*>\n(.*?)\n</user>", re.S)
_WORD = re.compile(r"\b[A-Z][\w'-]+")
_MAX_DEPTH = 8


def guided_answer(prompt: str) -> str | None:
    found = _TOOLS.search(prompt)
    tools = _declarations(found.group(1)) if found else []
    conversation = _DIRECTIVES.split(prompt, maxsplit=1)[0]
    if tools:
        forced = _FORCED.search(prompt)
        chosen = next((t for t in tools if forced and t.get("name") == forced.group(1)), tools[0])
        answered = conversation.rstrip().endswith("</tool>")
        if forced or _OPTIONAL not in prompt or not answered:
            arguments = _example(chosen.get("parameters", {}), chosen.get("parameters", {}), _hint(conversation), 0)
            name = str(chosen.get("name", ""))
            return f'<tool_call name="{name}">{json.dumps(arguments, ensure_ascii=False)}</tool_call>'
    if _FORMAT in prompt:
        schema = _SCHEMA.search(prompt[prompt.index(_FORMAT) :])
        root = _loads(schema.group(1)) if schema else None
        hint = _hint(conversation)
        return json.dumps(_example(root, root, hint, 0) if root is not None else {"answer": hint}, ensure_ascii=False)
    return None


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _declarations(block: str) -> list[dict[str, Any]]:
    parsed = (_loads(line) for line in block.splitlines())
    return [tool for tool in parsed if isinstance(tool, dict) and isinstance(tool.get("name"), str)]


def _hint(conversation: str) -> str:
    """A word the question offers as an argument: its last capitalised word, else its first word."""
    users = _USER.findall(conversation)
    question = users[-1] if users else conversation
    # A sentence's first word is capitalised anyway.
    names = [match.group(0) for match in _WORD.finditer(question) if match.start() > 0]
    words = names or question.split()
    return words[-1].strip("?!.,;:") if words else "example"


def _example(schema: Any, root: Any, hint: str, depth: int) -> Any:
    """A value valid against `schema` for the usual keywords (types, enum/const, properties, items, bounds, lengths,
    formats, anyOf/oneOf/allOf, local $ref); `pattern` and `multipleOf` are not attempted."""
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return hint
    if isinstance(schema.get("$ref"), str):
        return _example(_resolve(root, schema["$ref"]), root, hint, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return _example(schema[key][0], root, hint, depth + 1)
    if isinstance(schema.get("allOf"), list):
        return _merged([_example(part, root, hint, depth + 1) for part in schema["allOf"]], hint)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if kind == "object":
        return _object(schema, root, hint, depth)
    if kind == "array":
        return _array(schema, root, hint, depth)
    if kind in ("integer", "number"):
        return _number(schema, kind == "integer")
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string(schema, hint)


def _merged(parts: list[Any], hint: str) -> Any:
    dicts = [part for part in parts if isinstance(part, dict)]
    if dicts and len(dicts) == len(parts):
        return {key: value for part in dicts for key, value in part.items()}
    return parts[0] if parts else hint


def _resolve(root: Any, ref: str) -> Any:
    if not ref.startswith("#"):
        return {}
    target = root
    for part in ref[1:].split("/")[1:]:
        target = target.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(target, dict) else {}
    return target


def _object(schema: dict[str, Any], root: Any, hint: str, depth: int) -> dict[str, Any]:
    properties = schema.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    value = {name: _example(sub, root, hint, depth + 1) for name, sub in properties.items()}
    for name in schema.get("required", []) if isinstance(schema.get("required"), list) else []:
        value.setdefault(str(name), hint)
    return value


def _array(schema: dict[str, Any], root: Any, hint: str, depth: int) -> list[Any]:
    prefix = schema.get("prefixItems")
    if isinstance(prefix, list) and prefix:
        return [_example(item, root, hint, depth + 1) for item in prefix]
    shortest = schema.get("minItems")
    count = 0 if schema.get("maxItems") == 0 else max(shortest, 1) if isinstance(shortest, int) else 1
    return [_example(schema.get("items", {}), root, hint, depth + 1) for _ in range(count)]


def _number(schema: dict[str, Any], integer: bool) -> int | float:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    value: float = 1
    if isinstance(low, int | float):
        value = low + (1 if "exclusiveMinimum" in schema and "minimum" not in schema else 0)
    if isinstance(high, int | float) and value > high:
        value = high - (1 if "exclusiveMaximum" in schema and "maximum" not in schema else 0)
    return int(value) if integer else value


_FORMATS = {
    "date": "2026-01-01",
    "date-time": "2026-01-01T00:00:00Z",
    "time": "12:00:00",
    "email": "someone@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def _string(schema: dict[str, Any], hint: str) -> str:
    value = _FORMATS.get(str(schema.get("format", "")), hint)
    shortest, longest = schema.get("minLength"), schema.get("maxLength")
    if isinstance(shortest, int) and len(value) < shortest:
        value = value.ljust(shortest, "x")
    if isinstance(longest, int) and len(value) > longest:
        value = value[:longest]
    return value

"""Finding the JSON value in a reply that was asked to be only JSON, and checking it.

Models wrap JSON in code fences or add a sentence around it even when told not to; clients `json.loads` the
content directly, so the gateway returns exactly the JSON text and nothing around it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

from kimi_free_api.core.guided.jsonschema import schema_errors
from kimi_free_api.core.guided.tools import JsonOutput

_FENCED = re.compile(r"```[\w+-]*[ \t]*\n(.*?)\n?[ \t]*```", re.S)
# Where a JSON value may start inside prose; only the first few candidates are tried.
_VALUE_START = re.compile(r"[{\[]")
_MAX_CANDIDATES = 16
_DECODER = json.JSONDecoder()


@dataclass(slots=True, frozen=True)
class JsonVerdict:
    # The JSON text to return as `content` ('' when none was found).
    text: str
    problems: tuple[str, ...] = ()
    # Whether the problems are only schema mismatches (the text is valid JSON of the right kind).
    schema_only: bool = False


def _parsed(text: str) -> tuple[str, Any] | None:
    try:
        return text, orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    for count, match in enumerate(_VALUE_START.finditer(text)):
        if count == _MAX_CANDIDATES:
            break
        try:
            value, end = _DECODER.raw_decode(text, match.start())
        except ValueError:
            continue
        return text[match.start() : end], value
    return None


def find_json(reply: str) -> tuple[str, Any] | None:
    """The JSON text in `reply` and its value: the whole reply, a fenced block, or the first value in prose."""
    text = reply.strip()
    fenced = _FENCED.search(text)
    if fenced is not None:
        found = _parsed(fenced.group(1).strip())
        if found is not None:
            return found
    return _parsed(text)


def check_json(reply: str, output: JsonOutput) -> JsonVerdict:
    found = find_json(reply)
    if found is None:
        return JsonVerdict("", ("the reply contains no valid JSON value",))
    text, value = found
    if output.schema is None:
        if isinstance(value, dict):
            return JsonVerdict(text)
        return JsonVerdict(text, ("the reply must be a JSON object",))
    errors = schema_errors(value, output.schema)
    return JsonVerdict(text, tuple(f"the JSON does not match the schema at {error}" for error in errors), True)

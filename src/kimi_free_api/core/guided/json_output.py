"""Finding the JSON value in a reply that was asked to be only JSON, and checking it.

Models wrap JSON in code fences or add a sentence around it even when told not to; clients `json.loads` the
content directly, so the gateway returns exactly the JSON text and nothing around it. The reply is untrusted text
of any size: finding the fence is a few `str.find` calls, and at most `_MAX_CANDIDATES` values are decoded.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

from kimi_free_api.core.guided.jsonschema import schema_errors
from kimi_free_api.core.guided.tools import JsonOutput

_FENCE = "```"
# What may follow the opening fence on its line; it cannot backtrack further than the line it reads.
_FENCE_OPENING = re.compile(r"[\w+-]*[ \t]*\n")
# Only the first few places where a JSON value may start inside prose are tried.
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
    for start in _value_starts(text):
        try:
            value, end = _DECODER.raw_decode(text, start)
        except (ValueError, RecursionError):  # RecursionError: brackets nested deeper than the decoder goes
            continue
        return text[start:end], value
    return None


def _value_starts(text: str) -> list[int]:
    starts: list[int] = []
    at = -1
    while len(starts) < _MAX_CANDIDATES:
        brace, bracket = text.find("{", at + 1), text.find("[", at + 1)
        at = min(brace, bracket) if brace >= 0 and bracket >= 0 else max(brace, bracket)
        if at < 0:
            break
        starts.append(at)
    return starts


def _fenced(text: str) -> str | None:
    """The inside of the first code block (```lang, a newline, …, ```), if there is one."""
    at = text.find(_FENCE)
    while at >= 0:
        opening = _FENCE_OPENING.match(text, at + len(_FENCE))
        if opening is not None:
            close = text.find(_FENCE, opening.end())
            return None if close < 0 else text[opening.end() : close]
        at = text.find(_FENCE, at + 1)
    return None


def find_json(reply: str) -> tuple[str, Any] | None:
    """The JSON text in `reply` and its value: the whole reply, a fenced block, or the first value in prose."""
    text = reply.strip()
    fenced = _fenced(text)
    if fenced is not None:
        found = _parsed(fenced.strip())
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

"""Finding and checking the JSON of a reply that was asked to be JSON only."""

from __future__ import annotations

import pytest

from kimi_free_api.core.guided.json_output import check_json, find_json
from kimi_free_api.core.guided.tools import JsonOutput

PERSON = JsonOutput({"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}, "person")


@pytest.mark.parametrize(
    ("reply", "text"),
    [
        ('{"a": 1}', '{"a": 1}'),
        ('  \n{"a": 1}\n', '{"a": 1}'),
        ('```json\n{"a": [1, 2]}\n```', '{"a": [1, 2]}'),
        ('Here it is:\n```\n{"a": 1}\n```\nAnything else?', '{"a": 1}'),
        ('Sure! {"a": {"b": "}"}} is the answer.', '{"a": {"b": "}"}}'),
        ("[1, 2, 3]", "[1, 2, 3]"),
        ("42", "42"),
        ('The set {x} and then {"a": 1}', '{"a": 1}'),
    ],
)
def test_find_json_returns_exactly_the_json_text(reply: str, text: str) -> None:
    found = find_json(reply)
    assert found is not None and found[0] == text


@pytest.mark.parametrize("reply", ["", "no json here", "{broken", "```json\n{nope}\n```"])
def test_no_json(reply: str) -> None:
    assert find_json(reply) is None
    verdict = check_json(reply, JsonOutput())
    assert verdict.problems == ("the reply contains no valid JSON value",) and not verdict.schema_only


def test_json_object_mode_wants_an_object() -> None:
    assert check_json('```json\n{"ok": true}\n```', JsonOutput()).text == '{"ok": true}'
    assert check_json('{"ok": true}', JsonOutput()).problems == ()
    assert check_json("[1]", JsonOutput()).problems == ("the reply must be a JSON object",)


def test_json_schema_mode_checks_the_schema() -> None:
    assert check_json('{"age": 3}', PERSON).problems == ()
    verdict = check_json('{"age": "three"}', PERSON)
    assert verdict.text == '{"age": "three"}'
    assert verdict.problems == ("the JSON does not match the schema at age: expected integer, got string",)
    assert verdict.schema_only

"""The JSON Schema subset that tool arguments and structured outputs are checked against."""

from __future__ import annotations

from typing import Any

import pytest

from kimi_free_api.core.guided.jsonschema import (
    MAX_VALUE_DEPTH,
    SchemaError,
    check_schema,
    nests_too_deeply,
    schema_errors,
)

WEATHER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 1},
        "unit": {"enum": ["c", "f"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 14},
    },
    "required": ["city"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("value", "schema"),
    [
        ({"city": "Paris"}, WEATHER),
        ({"city": "Paris", "unit": "c", "days": 3}, WEATHER),
        ({"city": "Paris", "days": 3.0}, WEATHER),  # 3.0 is an integer in JSON Schema
        (None, {"type": ["string", "null"]}),
        (None, {"type": "string", "nullable": True}),
        ([1, "a"], {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}]}),
        ([1, "a"], {"type": "array", "items": [{"type": "integer"}, {"type": "string"}]}),
        ({"x": 1}, {"patternProperties": {"^x$": {"type": "integer"}}, "additionalProperties": False}),
        (5, {"anyOf": [{"type": "string"}, {"minimum": 3}]}),
        ("a", {"oneOf": [{"type": "string"}, {"type": "integer"}]}),
        (2, {"allOf": [{"type": "integer"}, {"multipleOf": 2}]}),
        (0.3, {"multipleOf": 0.1}),
        (
            {"a": {"b": "x"}},
            {"$defs": {"B": {"type": "string"}}, "properties": {"a": {"properties": {"b": {"$ref": "#/$defs/B"}}}}},
        ),
        ("anything", True),
        ({"when": "2025-01-01"}, {"properties": {"when": {"type": "string", "format": "date"}}}),
    ],
)
def test_valid_values(value: Any, schema: Any) -> None:
    assert schema_errors(value, schema if isinstance(schema, dict) else {"not": {"not": schema}}) == []


@pytest.mark.parametrize(
    ("value", "schema", "finding"),
    [
        ({}, WEATHER, "$: missing required property 'city'"),
        ({"city": "Paris", "extra": 1}, WEATHER, "$: unexpected property 'extra'"),
        ({"city": 5}, WEATHER, "city: expected string, got integer"),
        ({"city": ""}, WEATHER, "city: must have at least 1 characters, has 0"),
        ({"city": "P", "unit": "k"}, WEATHER, "unit: 'k' is not one of 'c', 'f'"),
        ({"city": "P", "days": 15}, WEATHER, "days: must be <= 14, got 15"),
        ({"city": "P", "days": 2.5}, WEATHER, "days: expected integer, got number"),
        (True, {"type": "integer"}, "$: expected integer, got boolean"),
        (1, {"const": True}, "$: must be True"),
        ([1, 1], {"uniqueItems": True}, "[1]: repeats an earlier item (uniqueItems)"),
        ([], {"minItems": 1}, "$: must have at least 1 items, has 0"),
        ("abc", {"pattern": "^a$"}, "$: 'abc' does not match the pattern '^a$'"),
        (2, {"exclusiveMaximum": 2}, "$: must be < 2, got 2"),
        (0.35, {"multipleOf": 0.1}, "$: must be a multiple of 0.1, got 0.35"),
        (1, {"anyOf": [{"type": "string"}, {"type": "null"}]}, "$: matches none of the allowed alternatives (anyOf)"),
        (
            1,
            {"oneOf": [{"type": "integer"}, {"minimum": 0}]},
            "$: must match exactly one alternative (oneOf), matches 2",
        ),
        (1, {"not": {"type": "integer"}}, "$: matches a schema it must not match (not)"),
        (
            {"a": [{"b": 1}]},
            {"properties": {"a": {"items": {"properties": {"b": {"type": "string"}}}}}},
            "a[0].b: expected string, got integer",
        ),
        ({"a": 1}, {"additionalProperties": {"type": "string"}}, "a: expected string, got integer"),
        ({"a": 1, "b": 2}, {"maxProperties": 1}, "$: must have at most 1 properties, has 2"),
    ],
)
def test_invalid_values_are_reported_with_their_path(value: Any, schema: dict[str, Any], finding: str) -> None:
    assert schema_errors(value, schema) == [finding]


def test_findings_are_capped() -> None:
    schema = {"type": "object", "required": [f"p{n}" for n in range(30)]}
    assert len(schema_errors({}, schema)) == 10


def test_true_and_one_are_different_enum_members() -> None:
    assert schema_errors(True, {"enum": [1]}) != []
    assert schema_errors(1, {"enum": [1.0]}) == []


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#/$defs/missing"},
        {"$ref": "https://example.com/schema.json"},
        {"properties": {"a": {"pattern": "("}}},
        {"patternProperties": {"(": {}}},
        {"items": 5},
        {"anyOf": [{"type": "string"}, "x"]},
        [],
    ],
)
def test_unusable_schemas_are_refused(schema: Any) -> None:
    with pytest.raises(SchemaError):
        check_schema(schema)


@pytest.mark.parametrize(
    "schema",
    [
        {"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},
        {"anyOf": [{"type": "string"}, {"allOf": [{"$ref": "#"}]}]},
        {"$defs": {"a": {"if": {"$ref": "#/$defs/b"}}, "b": {"not": {"$ref": "#/$defs/a"}}}, "$ref": "#/$defs/a"},
    ],
)
def test_a_reference_cycle_that_never_descends_is_refused(schema: dict[str, Any]) -> None:
    with pytest.raises(SchemaError, match="refers to itself"):
        check_schema(schema)
    # Checked anyway, it stops at the depth limit (a finding where it decides the verdict) rather than raising.
    assert isinstance(schema_errors(1, schema), list)


def test_a_value_nested_deeper_than_the_limit_is_a_finding() -> None:
    nested: Any = []
    for _ in range(100):
        nested = [nested]
    schema = {"type": "array", "items": {"$ref": "#"}}
    check_schema(schema)
    [finding] = schema_errors(nested, schema)
    where, problem = finding.split(": ")
    assert problem == "nests deeper than the 64 levels the gateway checks"
    assert where == "[0]" * (len(where) // 3) and len(where) > 30


def test_recursive_schemas_check_nested_values() -> None:
    tree = {
        "$defs": {
            "node": {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}
        },
        "$ref": "#/$defs/node",
    }
    check_schema(tree)
    assert schema_errors({"children": [{"children": []}]}, tree) == []
    assert schema_errors({"children": [{"children": [1]}]}, tree) == [
        "children[0].children[0]: expected object, got integer"
    ]


@pytest.mark.parametrize(
    ("value", "schema", "finding"),
    [
        (
            {"kind": "card"},
            {"if": {"properties": {"kind": {"const": "card"}}}, "then": {"required": ["number"]}},
            "$: missing required property 'number'",
        ),
        (5, {"if": {"type": "string"}, "then": {"minLength": 2}, "else": {"maximum": 3}}, "$: must be <= 3, got 5"),
        ([1, 2], {"contains": {"type": "string"}}, "$: must contain at least 1 matching items (contains), contains 0"),
        (
            ["a", 1],
            {"contains": {"type": "string"}, "minContains": 2},
            "$: must contain at least 2 matching items (contains), contains 1",
        ),
        (
            ["a", "b"],
            {"contains": {"type": "string"}, "maxContains": 1},
            "$: must contain at most 1 matching items (maxContains), contains 2",
        ),
        (
            {"Ab": 1},
            {"propertyNames": {"pattern": "^[a-z]+$"}},
            "$: the property name 'Ab' is not allowed (propertyNames)",
        ),
        (
            {"card": 1},
            {"dependentRequired": {"card": ["cvc"]}},
            "$: property 'cvc' is required when 'card' is present (dependentRequired)",
        ),
        (
            {"a": 1, "b": 2},
            {"allOf": [{"properties": {"a": True}}], "unevaluatedProperties": False},
            "$: unexpected property 'b' (unevaluatedProperties)",
        ),
        (
            [1, "x"],
            {"prefixItems": [True], "unevaluatedItems": {"type": "integer"}},
            "[1]: expected integer, got string",
        ),
        (
            {"card": 1},
            {"dependencies": {"card": ["cvc"]}},
            "$: property 'cvc' is required when 'card' is present (dependentRequired)",
        ),
    ],
)
def test_conditional_and_unevaluated_keywords(value: Any, schema: dict[str, Any], finding: str) -> None:
    assert schema_errors(value, schema) == [finding]


@pytest.mark.parametrize(
    ("value", "schema"),
    [
        ({"kind": "cash"}, {"if": {"properties": {"kind": {"const": "card"}}}, "then": {"required": ["number"]}}),
        ([], {"contains": {"type": "string"}, "minContains": 0}),
        (
            {"a": 1, "b": 2},
            {"anyOf": [{"properties": {"a": True}}, {"properties": {"b": True}}], "unevaluatedProperties": False},
        ),
        ({"a": 1}, {"if": {"required": ["a"]}, "then": {"properties": {"a": True}}, "unevaluatedProperties": False}),
    ],
)
def test_conditional_and_unevaluated_keywords_accept(value: Any, schema: dict[str, Any]) -> None:
    assert schema_errors(value, schema) == []


@pytest.mark.parametrize(
    ("schema", "named"),
    [
        ({"pattern": "^(?=.*\\d).+$"}, "`pattern` '^(?=.*\\\\d).+$' uses the lookaround (?="),
        ({"pattern": "(a)\\1"}, "`pattern` '(a)\\\\1' uses the backreference \\1"),
        ({"patternProperties": {"(?<!x)y": {}}}, "`patternProperties` '(?<!x)y' uses the lookaround (?<!"),
        ({"properties": {"a": {"pattern": "a" * 5000}}}, "is 5000 characters long"),
        ({"$dynamicRef": "#meta"}, "the keyword `$dynamicRef` is not supported"),
    ],
)
def test_what_cannot_run_in_linear_time_is_refused_by_name(schema: dict[str, Any], named: str) -> None:
    with pytest.raises(SchemaError) as caught:
        check_schema(schema)
    assert named in str(caught.value)


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("^a.b$", "a\nb", False),  # `.` stops at ECMA's line terminators
        ("^a.b$", "a\u2028b", False),
        ("^\\s$", "\u00a0", True),  # ECMA's \s includes no-break space
        ("^\\u00e9$", "é", True),
        ("^\\u{1F600}$", "😀", True),
        ("^[^]$", "\n", True),
        ("[]", "a", False),
        ("^(?<year>\\d{4})$", "2024", True),
        ("^\\p{Letter}+$", "été", True),
        ("^[a-z]+$", "abc\n", False),  # `$` is the end of the text, as in ECMA without the m flag
    ],
)
def test_patterns_follow_ecma_262(pattern: str, text: str, matches: bool) -> None:
    assert (schema_errors(text, {"pattern": pattern}) == []) == matches


def test_uniqueness_is_json_equality() -> None:
    assert schema_errors([1, True, "1", {"a": [1]}, {"a": [2]}], {"uniqueItems": True}) == []
    assert schema_errors([{"a": 1, "b": [1.0]}, {"b": [1], "a": 1.0}], {"uniqueItems": True}) == [
        "[1]: repeats an earlier item (uniqueItems)"
    ]


def test_values_nested_too_deeply_for_the_gateway_to_write_are_a_finding() -> None:
    # orjson reads 1,024 levels but writes only 254; the checker recurses once per level.
    deep: Any = 1
    for _ in range(MAX_VALUE_DEPTH + 1):
        deep = {"a": deep}
    assert schema_errors(deep, {"enum": [1]}) == [f"$: nests more than {MAX_VALUE_DEPTH} arrays and objects deep"]
    assert not nests_too_deeply(deep["a"])
    assert schema_errors(deep["a"], {"type": "object"}) == []

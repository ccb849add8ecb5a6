"""core/jsonschema.py against the `jsonschema` package (draft 2020-12) on generated schemas and instances.

The generator is seeded, so a failure names a reproducible case. Every schema uses at least one of the keyword
families the checker once ignored (`if`/`then`/`else`, `contains` with `minContains`/`maxContains`,
`propertyNames`, `dependentRequired`, `unevaluatedProperties`/`unevaluatedItems`), mixed with the keywords around
them (`properties`, `allOf`, `anyOf`, `oneOf`, `not`, `$ref` …). Values avoid what the two legitimately treat
differently: float `multipleOf` (a tolerance here) and newlines (Python's `$` matches before a final one).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from kimi_free_api.core.guided.jsonschema import check_schema, schema_errors

KEYS = ("a", "b", "c", "ab")
SCALARS: tuple[Any, ...] = (0, 1, 2, 5, -1, 2.5, 1.0, "", "a", "b", "ab", "ba", "abc", True, False, None)
PATTERNS = ("^a", "b$", "^[ab]+$", "c", "^.$")
TYPES = ("object", "array", "string", "integer", "number", "boolean", "null")
CASES_PER_SEED = 5
SEEDS = 4
SCHEMAS_PER_SEED = 500


class Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def pick(self, options: tuple[Any, ...] | list[Any]) -> Any:
        return self.rng.choice(options)

    def keys(self) -> list[str]:
        return self.rng.sample(KEYS, self.rng.randint(0, len(KEYS)))

    def leaf(self) -> Any:
        makers: list[Callable[[], Any]] = [
            lambda: {"type": self.pick(TYPES)},
            lambda: {"type": self.rng.sample(TYPES, 2)},
            lambda: {"const": self.pick(SCALARS)},
            lambda: {"enum": list(self.rng.sample(SCALARS, 3))},
            lambda: {"minimum": self.pick((0, 1, 2))},
            lambda: {"exclusiveMaximum": self.pick((1, 2, 5))},
            lambda: {"maxLength": self.pick((0, 1, 2))},
            lambda: {"minLength": self.pick((1, 2))},
            lambda: {"pattern": self.pick(PATTERNS)},
            lambda: {"required": self.keys()[:2]},
            lambda: {"properties": {key: {"type": self.pick(TYPES)} for key in self.keys()}},
            lambda: {"minItems": self.pick((1, 2))},
            lambda: {"maxProperties": self.pick((0, 1, 2))},
            lambda: self.rng.random() < 0.7,
            dict,
        ]
        return self.pick(makers)()

    def schema(self, depth: int) -> Any:
        if depth <= 0 or self.rng.random() < 0.25:
            return self.leaf()

        def sub() -> Any:
            return self.schema(depth - 1)

        families: list[Callable[[], dict[str, Any]]] = [
            lambda: self.conditional(sub),
            lambda: self.contains(sub),
            lambda: {"propertyNames": self.pick([self.leaf(), {"maxLength": 1}, {"pattern": "^[ab]"}, sub()])},
            lambda: {"dependentRequired": {key: self.keys()[:2] for key in self.keys()[:2]}},
            lambda: self.unevaluated_properties(sub),
            lambda: self.unevaluated_items(sub),
            lambda: {"allOf": [sub(), sub()]},
            lambda: {"anyOf": [sub(), sub()]},
            lambda: {"oneOf": [sub(), sub()]},
            lambda: {"not": sub()},
            lambda: {"properties": {key: sub() for key in self.keys()[:2]}, "required": self.keys()[:1]},
            lambda: {"items": sub()},
            lambda: {"additionalProperties": sub()},
        ]
        schema = self.pick(families)()
        if self.rng.random() < 0.3:
            schema.update(self.pick(families)())
        return schema

    def conditional(self, sub: Callable[[], Any]) -> dict[str, Any]:
        schema: dict[str, Any] = {"if": sub()}
        for branch in ("then", "else"):
            if self.rng.random() < 0.8:
                schema[branch] = sub()
        return schema

    def contains(self, sub: Callable[[], Any]) -> dict[str, Any]:
        schema: dict[str, Any] = {"contains": sub()}
        if self.rng.random() < 0.6:
            schema["minContains"] = self.pick((0, 1, 2, 3))
        if self.rng.random() < 0.4:
            schema["maxContains"] = self.pick((0, 1, 2))
        return schema

    def unevaluated_properties(self, sub: Callable[[], Any]) -> dict[str, Any]:
        schema: dict[str, Any] = {"unevaluatedProperties": self.pick([False, False, sub()])}
        if self.rng.random() < 0.6:
            schema["properties"] = {key: sub() for key in self.keys()[:2]}
        if self.rng.random() < 0.3:
            schema["patternProperties"] = {"^b": sub()}
        applicator = self.pick(("allOf", "anyOf", "oneOf", "if", "dependentSchemas", "$ref", None))
        if applicator in ("allOf", "anyOf", "oneOf"):
            schema[applicator] = [{"properties": {key: sub()}} for key in self.keys()[:2]] + [sub()]
        elif applicator == "if":
            schema["if"] = {"properties": {"a": sub()}, "required": ["a"]}
            schema["then"] = {"properties": {"b": sub()}}
            schema["else"] = {"properties": {"c": True}}
        elif applicator == "dependentSchemas":
            schema["dependentSchemas"] = {"a": {"properties": {"b": sub()}}}
        elif applicator == "$ref":
            schema["$ref"] = "#/$defs/shared"
        return schema

    def unevaluated_items(self, sub: Callable[[], Any]) -> dict[str, Any]:
        schema: dict[str, Any] = {"unevaluatedItems": self.pick([False, sub()])}
        if self.rng.random() < 0.6:
            schema["prefixItems"] = [sub() for _ in range(self.rng.randint(1, 2))]
        if self.rng.random() < 0.4:
            schema["contains"] = sub()
        if self.rng.random() < 0.3:
            schema["anyOf"] = [{"prefixItems": [True, True]}, sub()]
        return schema

    def value(self, depth: int) -> Any:
        roll = self.rng.random()
        if depth <= 0 or roll < 0.35:
            return self.pick(SCALARS)
        if roll < 0.7:
            return {key: self.value(depth - 1) for key in self.keys()}
        return [self.value(depth - 1) for _ in range(self.rng.randint(0, 4))]


def _cases(seed: int) -> list[tuple[Any, Any]]:
    generator = Generator(seed)
    cases = []
    for _ in range(SCHEMAS_PER_SEED):
        schema = generator.schema(3)
        if not isinstance(schema, dict):
            schema = {"allOf": [schema]}
        schema["$defs"] = {"shared": {"properties": {"c": generator.schema(1)}}}
        cases += [(schema, generator.value(3)) for _ in range(CASES_PER_SEED)]
    return cases


@pytest.mark.parametrize("seed", range(SEEDS))
def test_verdicts_agree_with_the_jsonschema_package(seed: int) -> None:
    verdicts = {True: 0, False: 0}
    for index, (schema, value) in enumerate(_cases(seed)):
        if index % 50 == 0:  # the generator writes valid schemas; checking against the metaschema is slow
            Draft202012Validator.check_schema(schema)
        check_schema(schema)
        expected = Draft202012Validator(schema).is_valid(value)
        ours = schema_errors(value, schema)
        assert (not ours) == expected, f"schema={schema!r} value={value!r} ours={ours!r}"
        verdicts[expected] += 1
    # Both verdicts must be common, or the comparison proves little.
    total = SCHEMAS_PER_SEED * CASES_PER_SEED
    assert verdicts[True] > total // 10 and verdicts[False] > total // 10, verdicts

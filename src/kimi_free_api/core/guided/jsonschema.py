"""Checking JSON values against the JSON Schema subset that tool parameters and structured outputs use.

Kimi has no constrained decoding, so the gateway checks what it wrote. Covered: `type` (one or a list; `integer`
accepts 2.0), `enum`, `const`, `properties`, `required`, `additionalProperties`, `patternProperties`,
`min/maxProperties`, `items` (a schema), `prefixItems`, `min/maxItems`, `uniqueItems`, `min/maxLength`, `pattern`,
`minimum`, `maximum`, `exclusiveMinimum`/`exclusiveMaximum` (numbers), `multipleOf`, `anyOf`, `oneOf`, `allOf`,
`not`, boolean schemas, `nullable` (the OpenAPI spelling some clients send), and `$ref` to `#/...` inside the same
document (`$defs`, `definitions`). Annotations (`format`, `description`, `title`, `default` …) are not checked:
OpenAI's structured outputs treat them the same way.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

# Enough for any sensible schema; stops a `$ref` cycle that never reaches a value.
_MAX_DEPTH = 64
_MAX_ERRORS = 10

_COMPARISONS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
_TYPE_NAMES = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    type(None): "null",
    int: "integer",
    float: "number",
}


class SchemaError(ValueError):
    """The schema itself is unusable (a `$ref` that leads nowhere, a pattern that is not a regex)."""


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return _TYPE_NAMES.get(type(value)) == name


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _equal(a: Any, b: Any) -> bool:
    # JSON equality: true is not 1, and 1 equals 1.0.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise SchemaError(f"invalid pattern {pattern!r}: {exc}") from exc


def _pointer(root: Mapping[str, Any], ref: str) -> Any:
    if not ref.startswith("#"):
        raise SchemaError(f"only references inside the schema are supported, not {ref!r}")
    target: Any = root
    for raw in ref[1:].split("/")[1:]:
        key = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(target, Mapping) and key in target:
            target = target[key]
        elif isinstance(target, list) and key.isdigit() and int(key) < len(target):
            target = target[int(key)]
        else:
            raise SchemaError(f"the reference {ref!r} leads nowhere")
    return target


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _Checker:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.errors: list[str] = []

    def fail(self, path: str, message: str) -> None:
        if len(self.errors) < _MAX_ERRORS:
            self.errors.append(f"{path or '$'}: {message}")

    def valid(self, value: Any, schema: Any, depth: int) -> bool:
        """Whether `value` matches, without recording anything (for anyOf / oneOf / not)."""
        probe = _Checker(self.root)
        probe.check(value, schema, "", depth)
        return not probe.errors

    def check(self, value: Any, schema: Any, path: str, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise SchemaError("the schema nests too deeply (a $ref cycle?)")
        if schema is True or schema is None:
            return
        if schema is False:
            self.fail(path, "no value is allowed here")
            return
        if not isinstance(schema, Mapping):
            raise SchemaError(f"a schema must be an object or a boolean, not {_type_name(schema)}")
        if isinstance(schema.get("$ref"), str):
            self.check(value, _pointer(self.root, schema["$ref"]), path, depth + 1)
        if value is None and schema.get("nullable") is True:
            return
        if not self._type(value, schema, path):
            return  # the remaining keywords would only repeat the mismatch
        options = schema.get("enum")
        if isinstance(options, list) and not any(_equal(value, option) for option in options):
            listed = ", ".join(_describe(option) for option in options)
            self.fail(path, f"{_describe(value)} is not one of {listed}")
        if "const" in schema and not _equal(value, schema["const"]):
            self.fail(path, f"must be {_describe(schema['const'])}")
        self._combinators(value, schema, path, depth)
        if isinstance(value, dict):
            self._object(value, schema, path, depth)
        elif isinstance(value, list):
            self._array(value, schema, path, depth)
        elif isinstance(value, str):
            self._string(value, schema, path)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            self._number(value, schema, path)

    def _type(self, value: Any, schema: Mapping[str, Any], path: str) -> bool:
        expected = schema.get("type")
        if expected is None:
            return True
        names = [expected] if isinstance(expected, str) else [n for n in expected if isinstance(n, str)]
        if any(_is_type(value, name) for name in names):
            return True
        self.fail(path, f"expected {' or '.join(names)}, got {_type_name(value)}")
        return False

    def _combinators(self, value: Any, schema: Mapping[str, Any], path: str, depth: int) -> None:
        for sub in schema.get("allOf") or ():
            self.check(value, sub, path, depth + 1)
        any_of = schema.get("anyOf")
        if any_of and not any(self.valid(value, sub, depth + 1) for sub in any_of):
            self.fail(path, "matches none of the allowed alternatives (anyOf)")
        one_of = schema.get("oneOf")
        if one_of:
            matches = sum(1 for sub in one_of if self.valid(value, sub, depth + 1))
            if matches != 1:
                self.fail(path, f"must match exactly one alternative (oneOf), matches {matches}")
        if "not" in schema and self.valid(value, schema["not"], depth + 1):
            self.fail(path, "matches a schema it must not match (not)")

    def _object(self, value: dict[str, Any], schema: Mapping[str, Any], path: str, depth: int) -> None:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        for name in schema.get("required") or ():
            if name not in value:
                self.fail(path, f"missing required property {name!r}")
        patterns = schema.get("patternProperties")
        patterns = patterns if isinstance(patterns, Mapping) else {}
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            matched = key in properties
            if matched:
                self.check(item, properties[key], where, depth + 1)
            for pattern, sub in patterns.items():
                if _regex(pattern).search(key):
                    matched = True
                    self.check(item, sub, where, depth + 1)
            if not matched:
                if extra is False:
                    self.fail(path, f"unexpected property {key!r}")
                elif isinstance(extra, Mapping):
                    self.check(item, extra, where, depth + 1)
        self._bounds(len(value), schema, path, low="minProperties", high="maxProperties", unit="properties")

    def _array(self, value: list[Any], schema: Mapping[str, Any], path: str, depth: int) -> None:
        items = schema.get("items")
        # Before draft 2020-12, an array of schemas under `items` was what `prefixItems` is now.
        prefix = items if isinstance(items, list) else schema.get("prefixItems")
        prefix = prefix if isinstance(prefix, list) else []
        for index, sub in enumerate(prefix[: len(value)]):
            self.check(value[index], sub, f"{path}[{index}]", depth + 1)
        if isinstance(items, Mapping | bool):
            for index in range(len(prefix), len(value)):
                self.check(value[index], items, f"{path}[{index}]", depth + 1)
        self._bounds(len(value), schema, path, low="minItems", high="maxItems", unit="items")
        if schema.get("uniqueItems") is True:
            for index, item in enumerate(value):
                if any(_equal(item, other) for other in value[:index]):
                    self.fail(f"{path}[{index}]", "repeats an earlier item (uniqueItems)")
                    break

    def _string(self, value: str, schema: Mapping[str, Any], path: str) -> None:
        self._bounds(len(value), schema, path, low="minLength", high="maxLength", unit="characters")
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and not _regex(pattern).search(value):
            self.fail(path, f"{_describe(value)} does not match the pattern {pattern!r}")

    def _number(self, value: float, schema: Mapping[str, Any], path: str) -> None:
        for keyword, sign in (
            ("minimum", ">="),
            ("maximum", "<="),
            ("exclusiveMinimum", ">"),
            ("exclusiveMaximum", "<"),
        ):
            bound: Any = schema.get(keyword)
            if _is_type(bound, "number") and not _COMPARISONS[sign](value, bound):
                self.fail(path, f"must be {sign} {bound}, got {value}")
        step: Any = schema.get("multipleOf")
        if _is_type(step, "number") and step > 0:
            quotient = value / step
            if not math.isclose(quotient, round(quotient), rel_tol=0, abs_tol=1e-9):
                self.fail(path, f"must be a multiple of {step}, got {value}")

    def _bounds(self, size: int, schema: Mapping[str, Any], path: str, *, low: str, high: str, unit: str) -> None:
        least: Any = schema.get(low)
        most: Any = schema.get(high)
        if _is_type(least, "integer") and size < least:
            self.fail(path, f"must have at least {least} {unit}, has {size}")
        if _is_type(most, "integer") and size > most:
            self.fail(path, f"must have at most {most} {unit}, has {size}")


def schema_errors(value: Any, schema: Mapping[str, Any]) -> list[str]:
    """What is wrong with `value` (at most 10 findings, each `path: problem`); empty when it matches.

    Raises `SchemaError` when the schema itself cannot be used.
    """
    checker = _Checker(schema)
    checker.check(value, schema, "", 0)
    return checker.errors


_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_SINGLES = ("additionalProperties", "items", "not", "if", "then", "else", "contains", "propertyNames")


def check_schema(schema: Any) -> None:
    """Raises `SchemaError` if `schema` cannot be used for checking: a `$ref` that leads nowhere or outside the
    document, a `pattern` that is not a regular expression, a subschema that is neither an object nor a boolean."""
    if not isinstance(schema, Mapping):
        raise SchemaError("a schema must be a JSON object")

    def walk(node: Any, depth: int) -> None:
        if isinstance(node, bool):
            return
        if not isinstance(node, Mapping):
            raise SchemaError(f"a schema must be an object or a boolean, not {_type_name(node)}")
        if depth > _MAX_DEPTH:
            raise SchemaError("the schema nests too deeply")
        if isinstance(node.get("$ref"), str):
            _pointer(schema, node["$ref"])
        if isinstance(node.get("pattern"), str):
            _regex(node["pattern"])
        for key in _SCHEMA_MAPS:
            children = node.get(key)
            if isinstance(children, Mapping):
                for name, child in children.items():
                    if key == "patternProperties":
                        _regex(name)
                    walk(child, depth + 1)
        for key in _SCHEMA_LISTS:
            for child in node.get(key) or ():
                walk(child, depth + 1)
        for key in _SCHEMA_SINGLES:
            child = node.get(key)
            for one in child if isinstance(child, list) else () if child is None else (child,):
                walk(one, depth + 1)

    walk(schema, 0)

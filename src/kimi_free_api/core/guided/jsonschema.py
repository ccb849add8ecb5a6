"""Checking JSON values against the JSON Schema subset that tool parameters and structured outputs use.

Kimi has no constrained decoding, so the gateway checks what it wrote. Covered: `type` (one or a list; `integer`
accepts 2.0), `enum`, `const`, `properties`, `required`, `additionalProperties`, `patternProperties`,
`propertyNames`, `dependentRequired`, `dependentSchemas` (and draft 7's `dependencies`), `unevaluatedProperties`,
`min/maxProperties`, `items` (a schema), `prefixItems` (or draft 7's array `items` with `additionalItems`),
`contains` with `min/maxContains`, `unevaluatedItems`, `min/maxItems`, `uniqueItems`, `min/maxLength`, `pattern`,
`minimum`, `maximum`, `exclusiveMinimum`/`exclusiveMaximum` (numbers), `multipleOf`, `anyOf`, `oneOf`, `allOf`,
`not`, `if`/`then`/`else`, boolean schemas, `nullable` (the OpenAPI spelling some clients send), and `$ref` to
`#/...` inside the same document (`$defs`, `definitions`). Annotations (`format`, `description`, `title`, `default`
…) are not checked: OpenAI's structured outputs treat them the same way. `$dynamicRef` and `$recursiveRef` are
refused (`check_schema`) rather than ignored. `unevaluated*` follow draft 2020-12: what `properties`,
`patternProperties`, `additional*`, `items`, `prefixItems`, `contains` and nested `unevaluated*` evaluated, in this
schema and in the subschemas that apply (`allOf`, the `anyOf`/`oneOf` branches that match, `if` with `then` or
`else`, `dependentSchemas`, `$ref`).

The values come from Kimi's reply and can be large, so checking stays polynomial in schema and value: `pattern`
runs on RE2 (core/guided/ecma_regex.py, linear time), `uniqueItems` hashes the items, and whether a value matches a
subschema (`anyOf`, `oneOf`, `not`, `if`, `contains` …) is computed once per pair.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterator, Mapping
from typing import Any

from kimi_free_api.core.guided.ecma_regex import PatternError, compile_pattern

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


def _regex(pattern: str, keyword: str) -> Any:
    try:
        return compile_pattern(pattern)
    except PatternError as exc:
        raise SchemaError(f"the `{keyword}` {_describe(pattern)} {exc}") from None


def _json_hash(value: Any) -> int:
    """A hash equal for equal JSON values (1 and 1.0 alike, true and 1 not). Its temporaries die at once, so
    hashing many items does not wake the garbage collector the way keeping a container per item would."""
    if value is None or isinstance(value, bool):
        return hash((type(value), value))
    if isinstance(value, dict):
        return hash(frozenset((key, _json_hash(item)) for key, item in value.items()))
    if isinstance(value, list):
        return hash(tuple(_json_hash(item) for item in value))
    return hash(value)


def _first_repeat(items: list[Any]) -> int:
    """The index of the first item equal to an earlier one, or -1."""
    first: dict[int, int] = {}
    # Only the hashes that recur get a list of the items that have them (a collision of unequal items is rare).
    sharing: dict[int, list[int]] = {}
    for index, item in enumerate(items):
        code = _json_hash(item)
        earlier = first.setdefault(code, index)
        if earlier == index:
            continue
        group = sharing.setdefault(code, [earlier])
        if any(_equal(item, items[other]) for other in group):
            return index
        group.append(index)
    return -1


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
    def __init__(self, root: Mapping[str, Any], verdicts: dict[tuple[int, int], bool] | None = None) -> None:
        self.root = root
        self.errors: list[str] = []
        # Whether a value (by id) matches a subschema (by id): each pair is checked once however often it recurs.
        self._verdicts: dict[tuple[int, int], bool] = {} if verdicts is None else verdicts

    def fail(self, path: str, message: str) -> None:
        if len(self.errors) < _MAX_ERRORS:
            self.errors.append(f"{path or '$'}: {message}")

    def valid(self, value: Any, schema: Any, depth: int) -> bool:
        """Whether `value` matches, without recording anything (for anyOf / oneOf / not …)."""
        key = (id(value), id(schema))
        verdict = self._verdicts.get(key)
        if verdict is None:
            probe = _Checker(self.root, self._verdicts)
            probe.check(value, schema, "", depth)
            verdict = self._verdicts[key] = not probe.errors
        return verdict

    def check(self, value: Any, schema: Any, path: str, depth: int) -> None:
        if depth > _MAX_DEPTH:
            # A value nested this deep under a recursive schema; `check_schema` refuses cycles that never descend.
            self.fail(path, f"nests deeper than the {_MAX_DEPTH} levels the gateway checks")
            return
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
        if "if" in schema:
            branch = "then" if self.valid(value, schema["if"], depth + 1) else "else"
            if branch in schema:
                self.check(value, schema[branch], path, depth + 1)

    def _object(self, value: dict[str, Any], schema: Mapping[str, Any], path: str, depth: int) -> None:
        properties = _mapping(schema, "properties")
        for name in schema.get("required") or ():
            if name not in value:
                self.fail(path, f"missing required property {name!r}")
        self._dependencies(value, schema, path, depth)
        patterns = [(_regex(p, "patternProperties"), sub) for p, sub in _mapping(schema, "patternProperties").items()]
        extra = schema.get("additionalProperties", True)
        names = schema.get("propertyNames", True)
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if names is not True and not self.valid(key, names, depth + 1):
                self.fail(path, f"the property name {key!r} is not allowed (propertyNames)")
            matched = key in properties
            if matched:
                self.check(item, properties[key], where, depth + 1)
            for pattern, sub in patterns:
                if pattern.search(key):
                    matched = True
                    self.check(item, sub, where, depth + 1)
            if not matched:
                if extra is False:
                    self.fail(path, f"unexpected property {key!r}")
                elif isinstance(extra, Mapping):
                    self.check(item, extra, where, depth + 1)
        self._bounds(len(value), schema, path, low="minProperties", high="maxProperties", unit="properties")
        if "unevaluatedProperties" in schema:
            seen = self._evaluated(value, schema, depth, own=False)
            for key, item in value.items():
                if key in seen:
                    continue
                if schema["unevaluatedProperties"] is False:
                    self.fail(path, f"unexpected property {key!r} (unevaluatedProperties)")
                else:
                    self.check(item, schema["unevaluatedProperties"], f"{path}.{key}" if path else key, depth + 1)

    def _dependencies(self, value: dict[str, Any], schema: Mapping[str, Any], path: str, depth: int) -> None:
        required = dict(_mapping(schema, "dependentRequired"))
        schemas = dict(_mapping(schema, "dependentSchemas"))
        # Draft 7 spelled both `dependencies`: a list of names, or a schema.
        for name, spec in _mapping(schema, "dependencies").items():
            (required if isinstance(spec, list) else schemas)[name] = spec
        for name, needed in required.items():
            if name in value:
                for other in needed:
                    if other not in value:
                        self.fail(path, f"property {other!r} is required when {name!r} is present (dependentRequired)")
        for name, sub in schemas.items():
            if name in value:
                self.check(value, sub, path, depth + 1)

    def _array(self, value: list[Any], schema: Mapping[str, Any], path: str, depth: int) -> None:
        items = schema.get("items")
        # Before draft 2020-12, an array of schemas under `items` was what `prefixItems` is now.
        prefix = _prefix(schema)
        for index, sub in enumerate(prefix[: len(value)]):
            self.check(value[index], sub, f"{path}[{index}]", depth + 1)
        rest = items if isinstance(items, Mapping | bool) else schema.get("additionalItems") if prefix else None
        if isinstance(rest, Mapping | bool):
            for index in range(len(prefix), len(value)):
                self.check(value[index], rest, f"{path}[{index}]", depth + 1)
        self._bounds(len(value), schema, path, low="minItems", high="maxItems", unit="items")
        if schema.get("uniqueItems") is True:
            repeat = _first_repeat(value)
            if repeat >= 0:
                self.fail(f"{path}[{repeat}]", "repeats an earlier item (uniqueItems)")
        if "contains" in schema:
            self._contains(value, schema, path, depth)
        if "unevaluatedItems" in schema:
            seen_items = self._evaluated(value, schema, depth, own=False)
            for index, item in enumerate(value):
                if index not in seen_items:
                    self.check(item, schema["unevaluatedItems"], f"{path}[{index}]", depth + 1)

    def _contains(self, value: list[Any], schema: Mapping[str, Any], path: str, depth: int) -> None:
        matches = sum(1 for item in value if self.valid(item, schema["contains"], depth + 1))
        least: Any = schema.get("minContains", 1)
        most: Any = schema.get("maxContains")
        if _is_type(least, "integer") and matches < least:
            self.fail(path, f"must contain at least {least} matching items (contains), contains {matches}")
        if _is_type(most, "integer") and matches > most:
            self.fail(path, f"must contain at most {most} matching items (maxContains), contains {matches}")

    def _evaluated(self, value: dict[str, Any] | list[Any], schema: Any, depth: int, *, own: bool = True) -> set[Any]:
        """The property names (object) or indexes (array) that `schema` and the subschemas that apply to `value`
        evaluated; `own=False` leaves out the schema's own `unevaluated*`, which asks the question."""
        if depth > _MAX_DEPTH or not isinstance(schema, Mapping):
            return set()
        everything: set[Any] = set(value) if isinstance(value, dict) else set(range(len(value)))
        seen: set[Any]
        if isinstance(value, dict):
            if "additionalProperties" in schema or (own and "unevaluatedProperties" in schema):
                return everything
            seen = everything & _mapping(schema, "properties").keys()
            for pattern in _mapping(schema, "patternProperties"):
                seen |= {key for key in value if _regex(pattern, "patternProperties").search(key)}
            for name, sub in _mapping(schema, "dependentSchemas").items():
                if name in value:
                    seen |= self._evaluated(value, sub, depth + 1)
        else:
            items = schema.get("items")
            rest = isinstance(items, Mapping | bool) or ("additionalItems" in schema and bool(_prefix(schema)))
            if rest or (own and "unevaluatedItems" in schema):
                return everything
            seen = set(range(min(len(value), len(_prefix(schema)))))
            if "contains" in schema:
                seen |= {i for i, item in enumerate(value) if self.valid(item, schema["contains"], depth + 1)}
        if isinstance(schema.get("$ref"), str):
            seen |= self._evaluated(value, _pointer(self.root, schema["$ref"]), depth + 1)
        for sub in schema.get("allOf") or ():
            seen |= self._evaluated(value, sub, depth + 1)
        for key in ("anyOf", "oneOf"):
            for sub in schema.get(key) or ():
                if self.valid(value, sub, depth + 1):
                    seen |= self._evaluated(value, sub, depth + 1)
        if "if" in schema:
            if self.valid(value, schema["if"], depth + 1):
                seen |= self._evaluated(value, schema["if"], depth + 1)
                seen |= self._evaluated(value, schema.get("then"), depth + 1)
            else:
                seen |= self._evaluated(value, schema.get("else"), depth + 1)
        return seen

    def _string(self, value: str, schema: Mapping[str, Any], path: str) -> None:
        self._bounds(len(value), schema, path, low="minLength", high="maxLength", unit="characters")
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and not _regex(pattern, "pattern").search(value):
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


def _mapping(schema: Mapping[str, Any], keyword: str) -> Mapping[str, Any]:
    value = schema.get(keyword)
    return value if isinstance(value, Mapping) else {}


def _prefix(schema: Mapping[str, Any]) -> list[Any]:
    items = schema.get("items")
    prefix = items if isinstance(items, list) else schema.get("prefixItems")
    return prefix if isinstance(prefix, list) else []


# How deep a value from a reply may nest: orjson parses up to 1,024 levels but writes only 254, and comparing,
# hashing or quoting a value recurses once per level.
MAX_VALUE_DEPTH = 128


def nests_too_deeply(value: Any) -> bool:
    """Whether `value` nests more than `MAX_VALUE_DEPTH` arrays and objects deep (found without recursion)."""
    level = [value]
    for _ in range(MAX_VALUE_DEPTH):
        level = [
            child
            for node in level
            if isinstance(node, dict | list)
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, dict | list)
        ]
        if not level:
            return False
    return True


def schema_errors(value: Any, schema: Mapping[str, Any]) -> list[str]:
    """What is wrong with `value` (at most 10 findings, each `path: problem`); empty when it matches.

    Raises `SchemaError` when the schema itself cannot be used.
    """
    if nests_too_deeply(value):
        return [f"$: nests more than {MAX_VALUE_DEPTH} arrays and objects deep"]
    checker = _Checker(schema)
    checker.check(value, schema, "", 0)
    return checker.errors


_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_SINGLES = (
    "additionalProperties",
    "items",
    "additionalItems",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedProperties",
    "unevaluatedItems",
)
# Keywords that change what a schema means and that the checker does not follow: refused rather than ignored.
_REFUSED = ("$dynamicRef", "$recursiveRef")
# Keywords whose subschemas apply to the very value their schema applies to, without descending into it.
_SAME_VALUE_LISTS = ("allOf", "anyOf", "oneOf")
_SAME_VALUE_SINGLES = ("not", "if", "then", "else")
_SAME_VALUE_MAPS = ("dependentSchemas", "dependencies")
_DONE = object()


def _same_value_subschemas(root: Mapping[str, Any], node: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    found: list[Any] = []
    if isinstance(node.get("$ref"), str):
        found.append(_pointer(root, node["$ref"]))
    for key in _SAME_VALUE_LISTS:
        children = node.get(key)
        found += children if isinstance(children, list) else ()
    found += (node[key] for key in _SAME_VALUE_SINGLES if key in node)
    for key in _SAME_VALUE_MAPS:
        found += _mapping(node, key).values()
    return (child for child in found if isinstance(child, Mapping))


def _refuse_cycles(root: Mapping[str, Any], nodes: list[Mapping[str, Any]]) -> None:
    """A chain of subschemas that apply to the same value and leads back to where it started would never end
    (`{"$ref": "#"}`, or through `allOf` …); a depth-first search without recursion finds one."""
    state: dict[int, bool] = {}  # False while a node is on the current path, True once all it leads to is done
    for start in nodes:
        if id(start) in state:
            continue
        state[id(start)] = False
        path = [(start, _same_value_subschemas(root, start))]
        while path:
            child = next(path[-1][1], _DONE)
            if child is _DONE:
                state[id(path.pop()[0])] = True
                continue
            assert isinstance(child, Mapping)
            seen = state.get(id(child))
            if seen is False:
                raise SchemaError("the schema refers to itself without descending into a property or an item")
            if seen is None:
                state[id(child)] = False
                path.append((child, _same_value_subschemas(root, child)))


def check_schema(schema: Any) -> None:
    """Raises `SchemaError` if `schema` cannot be used for checking: a `$ref` that leads nowhere or outside the
    document, a `pattern` that is not a regular expression or needs backtracking, a subschema that is neither an
    object nor a boolean, a keyword the checker cannot honour, a cycle of references that never reaches a value."""
    if not isinstance(schema, Mapping):
        raise SchemaError("a schema must be a JSON object")
    nodes: list[Mapping[str, Any]] = []

    def walk(node: Any, depth: int) -> None:
        if isinstance(node, bool):
            return
        if not isinstance(node, Mapping):
            raise SchemaError(f"a schema must be an object or a boolean, not {_type_name(node)}")
        if depth > _MAX_DEPTH:
            raise SchemaError("the schema nests too deeply")
        nodes.append(node)
        for keyword in _REFUSED:
            if keyword in node:
                raise SchemaError(f"the keyword `{keyword}` is not supported; use `$ref` to `#/$defs/…`")
        if isinstance(node.get("$ref"), str):
            _pointer(schema, node["$ref"])
        if isinstance(node.get("pattern"), str):
            _regex(node["pattern"], "pattern")
        for key in _SCHEMA_MAPS:
            children = node.get(key)
            if isinstance(children, Mapping):
                for name, child in children.items():
                    if key == "patternProperties":
                        _regex(name, "patternProperties")
                    if key == "dependencies" and isinstance(child, list):
                        continue  # the list form names required properties
                    walk(child, depth + 1)
        for key in _SCHEMA_LISTS:
            for child in node.get(key) or ():
                walk(child, depth + 1)
        for key in _SCHEMA_SINGLES:
            child = node.get(key)
            for one in child if isinstance(child, list) else () if child is None else (child,):
                walk(one, depth + 1)

    walk(schema, 0)
    _refuse_cycles(schema, nodes)

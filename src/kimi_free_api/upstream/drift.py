"""Noticing when Kimi's wire format moves away from what the adapter knows, without leaking what was said.

A frame's *shape* is its structure with every free value erased: keys are kept, enum-like values (`STAGE_STATUS_END`,
`REASON_COMPLETION_OVERLOADED`) and the values of a few keys that only ever hold protocol words (`op`, `mask`,
`code`) are kept, and every other string, number or boolean becomes its type name. Text, ids and tokens therefore
never appear in a shape, which makes it safe for a log line, a metric label or a trace that a user attaches to a
bug report.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson

log = logging.getLogger(__name__)

# Upper-case protocol words such as STAGE_STATUS_END; long enough to be a word, short enough never to be a token.
_ENUM = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")
_ENUM_MAX = 80
# Keys whose values are protocol vocabulary even when they are not upper-case words.
_WORD_KEYS = frozenset({"op", "mask", "code", "role", "flags", "severity", "reason", "status", "type"})
_WORD = re.compile(r"[A-Za-z0-9_.$-]{1,64}")
# Deep or wide frames are cut: a shape is a diagnosis, not a copy.
_MAX_DEPTH = 8
_MAX_ITEMS = 16


def frame_shape(value: Any, key: str = "", depth: int = 0) -> Any:
    """The structure of a decoded JSON value with its free text erased (see the module docstring)."""
    if isinstance(value, dict):
        if depth >= _MAX_DEPTH:
            return "{…}"
        return {k: frame_shape(v, k, depth + 1) for k, v in sorted(value.items())[:_MAX_ITEMS] if isinstance(k, str)}
    if isinstance(value, list):
        if depth >= _MAX_DEPTH:
            return ["…"]
        shapes: list[Any] = []
        for item in value[:_MAX_ITEMS]:
            shape = frame_shape(item, key, depth + 1)
            if shape not in shapes:
                shapes.append(shape)
        return shapes
    if isinstance(value, str):
        if len(value) <= _ENUM_MAX and _ENUM.fullmatch(value):
            return value
        if key in _WORD_KEYS and _WORD.fullmatch(value) and not value.isdigit():
            return value
        return "str"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "num"
    return "null"


def shape_text(value: Any) -> str:
    """One line for a shape: keys sorted, so equal shapes give equal text."""
    return orjson.dumps(frame_shape(value), option=orjson.OPT_SORT_KEYS).decode()


@dataclass(frozen=True, slots=True)
class DriftRecord:
    kind: str
    shape: str
    count: int


class DriftMonitor:
    """Counts what the adapter met and did not understand, and logs each distinct shape once.

    Thread-safe because token counting and tests may touch it from worker threads; the lock is only taken on the
    rare path where something unknown arrived.
    """

    # Past this many distinct shapes only the counts grow: a stream of random keys cannot fill memory or the log.
    MAX_SHAPES = 256

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_kind: Counter[str] = Counter()
        self._by_shape: Counter[tuple[str, str]] = Counter()

    def note(self, kind: str, value: Any) -> None:
        shape = shape_text(value)
        with self._lock:
            self._by_kind[kind] += 1
            seen = (kind, shape) in self._by_shape
            if seen or len(self._by_shape) < self.MAX_SHAPES:
                self._by_shape[kind, shape] += 1
        if not seen:
            log.warning("Kimi protocol drift: %s not understood, shape %s", kind, shape)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._by_kind)

    def records(self) -> list[DriftRecord]:
        with self._lock:
            return [DriftRecord(kind, shape, n) for (kind, shape), n in self._by_shape.items()]

    def reset(self) -> None:
        with self._lock:
            self._by_kind.clear()
            self._by_shape.clear()


# One per process: drift is a property of the upstream, not of a request.
drift = DriftMonitor()

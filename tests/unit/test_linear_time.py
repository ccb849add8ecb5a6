"""No super-linear work on a request or a reply: each case once took seconds (the figure in its id) and must now
finish well inside its bound, on a 2-core machine shared with other work."""

from __future__ import annotations

import random
import string
import time
from collections.abc import Callable
from typing import Any

import pytest

from kimi_free_api.core.guided.json_output import find_json
from kimi_free_api.core.guided.jsonschema import schema_errors
from kimi_free_api.core.guided.tool_protocol import BlockGate, CallDraft, parse_reply
from kimi_free_api.core.usage.bpe import MAX_PIECE
from kimi_free_api.core.usage.tokenizer import BpeCounter

BOUND_S = 1.0


def _gate(reply: str, size: int = 5) -> str:
    gate = BlockGate()
    shown = "".join(gate.feed(reply[i : i + size]) for i in range(0, len(reply), size))
    return shown + gate.flush()


def _timed(work: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started


REPLIES: dict[str, Callable[[], Any]] = {
    # Before: the attribute regex restarted inside the word at every letter (13 s).
    "a 40 KB attribute word (13 s)": lambda: parse_reply("<tool_call " + "a" * 40_000 + ">{}</tool_call>"),
    # Before: the fence regex tried the closing fence at every blank (4.5 s).
    "60 KB of blanks in a fenced body (4.5 s)": lambda: parse_reply(
        '<tool_call name="f">```\n' + " " * 60_000 + "x</tool_call>"
    ),
    # Before: every element scanned to the end of the reply for its `>` (quadratic in the count of tags).
    "20,000 unclosed tags (1 s)": lambda: parse_reply("x <tool_call " * 20_000),
    # Before: the held-back blanks were rescanned on every delta (13 s).
    "40 KB of blanks streamed 5 characters at a time (13 s)": lambda: _gate(" " * 40_000),
    "200 KB of prose and backticks streamed (0.5 s)": lambda: _gate("word ``` <tool ` <" * 11_000),
    # Before: the JSON fence regex, like the tool-call one (3.9 s).
    "60 KB of blanks after a JSON fence (3.9 s)": lambda: find_json("```\n" + " " * 60_000 + "x"),
    "deeply nested brackets in JSON prose (RecursionError)": lambda: find_json("x " + "[" * 100_000),
}


@pytest.mark.parametrize("work", REPLIES.values(), ids=REPLIES.keys())
def test_reply_parsing_is_linear(work: Callable[[], Any]) -> None:
    _, elapsed = _timed(work)
    assert elapsed < BOUND_S


def test_a_megabyte_reply_with_calls_parses_in_linear_time() -> None:
    prose = "Some prose, with <b>markup</b> and `code` in it. " * 20_000
    call = '<tool_call name="f">{"x": "' + "y" * 100_000 + '"}</tool_call>\n'
    reply = prose + call * 3
    parsed, elapsed = _timed(lambda: parse_reply(reply))
    assert parsed.calls == (CallDraft("f", {"x": "y" * 100_000}),) * 3
    assert parsed.content == prose.rstrip()
    shown, streamed = _timed(lambda: _gate(reply, 40))
    assert shown == prose.rstrip()
    assert elapsed + streamed < 2 * BOUND_S


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        # Before: Python's `re` backtracked, doubling per "a" (26 of them: 1.65 s; 28: 6.6 s).
        ("a" * 28 + "b", "^(a+)+$"),
        ("a" * 28 + "b", "^(a|a)*$"),
        ("x" * 1_000_000 + "!", "^(x+x+)+y$"),
    ],
)
def test_client_patterns_cannot_backtrack(text: str, pattern: str) -> None:
    errors, elapsed = _timed(lambda: schema_errors({"s": text}, {"properties": {"s": {"pattern": pattern}}}))
    assert len(errors) == 1 and "does not match the pattern" in errors[0]
    assert elapsed < BOUND_S / 2


def test_unique_items_are_checked_in_linear_time() -> None:
    # Before: each item was compared with every earlier one (5,000 items: 12.5 million comparisons, seconds).
    items = [{"id": n, "tags": [str(n)]} for n in range(5_000)]
    errors, elapsed = _timed(lambda: schema_errors(items, {"uniqueItems": True}))
    assert errors == [] and elapsed < BOUND_S / 2
    errors, _ = _timed(lambda: schema_errors([*items, {"tags": ["7"], "id": 7.0}], {"uniqueItems": True}))
    assert errors == ["[5000]: repeats an earlier item (uniqueItems)"]


def test_repeated_subschemas_are_checked_once_per_value() -> None:
    # 18 levels of two-way anyOf over the same value: 2**18 checks of the innermost schema without memoising.
    defs: dict[str, Any] = {"d18": {"type": "integer"}}
    for level in range(18):
        ref = {"$ref": f"#/$defs/d{level + 1}"}
        defs[f"d{level}"] = {"anyOf": [ref, {"allOf": [ref, {"minimum": 0}]}]}
    schema = {"$defs": defs, "$ref": "#/$defs/d0"}
    errors, elapsed = _timed(lambda: schema_errors("x", schema))
    assert errors and elapsed < BOUND_S / 2


def test_one_repeated_character_counts_in_linear_time() -> None:
    # Before: one 3,000,000-character piece merged whole (10 MB took 23.6 s; this, 12 s).
    BpeCounter().load()
    text = "x" * 3_000_000
    tokens, elapsed = _timed(lambda: BpeCounter().count(text))
    piece_tokens = BpeCounter().count("x" * MAX_PIECE)
    assert tokens == piece_tokens * (len(text) // MAX_PIECE) + BpeCounter().count("x" * (len(text) % MAX_PIECE))
    assert elapsed < 2 * BOUND_S


def test_long_random_pieces_deviate_by_at_most_two_tokens_per_chunk() -> None:
    counter = BpeCounter()
    counter.load()
    encoder = BpeCounter._encoder
    assert encoder is not None
    piece = "".join(random.Random(5).choices(string.ascii_lowercase, k=MAX_PIECE + 5000))
    whole = len(encoder._merge(piece.encode())) - 1
    cuts = len(piece) // MAX_PIECE
    assert abs(counter.count(piece) - whole) <= 2 * cuts
    assert counter.count(piece) == len(encoder.encode(piece))

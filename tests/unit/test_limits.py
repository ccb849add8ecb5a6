from __future__ import annotations

from kimi_free_api.core.answer.limits import OutputLimit
from kimi_free_api.core.usage.usage import estimate_tokens


def _run(limit: OutputLimit, pieces: list[str]) -> str:
    shown = [limit.feed(piece) for piece in pieces]
    return "".join(shown) + limit.flush()


def test_no_limits_means_no_guard() -> None:
    assert OutputLimit.create([], None) is None
    assert OutputLimit.create([""], None) is None


def test_stop_sequence_split_across_deltas_is_caught() -> None:
    limit = OutputLimit(["END"], None)
    assert _run(limit, ["abc E", "N", "D tail"]) == "abc "
    assert limit.reason == "stop"


def test_text_resembling_a_stop_prefix_is_released() -> None:
    limit = OutputLimit(["END"], None)
    assert limit.feed("hello E") == "hello "
    assert limit.feed("x") == "Ex"
    assert limit.flush() == ""
    assert limit.reason is None


def test_held_tail_is_flushed_at_the_end() -> None:
    limit = OutputLimit(["END"], None)
    assert _run(limit, ["fin E"]) == "fin E"
    assert limit.reason is None


def test_earliest_of_several_stops_wins() -> None:
    limit = OutputLimit(["zz", "b"], None)
    assert _run(limit, ["a b c zz"]) == "a "


def test_budget_cuts_at_the_token_limit() -> None:
    limit = OutputLimit([], 5)
    shown = _run(limit, ["abcdefgh", "ijklmnop", "qrstuvwxyz", "0123456789"])
    assert limit.reason == "length"
    assert estimate_tokens(shown) <= 5
    assert shown == "abcdefghijklmnopqrst"


def test_budget_counts_cjk_per_character() -> None:
    limit = OutputLimit([], 3)
    assert _run(limit, ["你好世界"]) == "你好世"
    assert limit.reason == "length"


def test_exact_fit_is_not_a_cut() -> None:
    limit = OutputLimit([], 2)
    assert _run(limit, ["abcdefgh"]) == "abcdefgh"
    assert limit.reason is None
    assert limit.feed("more") == ""
    assert limit.reason == "length"

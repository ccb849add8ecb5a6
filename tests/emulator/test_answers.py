"""The deterministic texts: what tests on either side of the wire can predict."""

from __future__ import annotations

import re

import pytest

from kimi_free_api.emulator import EmulatorConfig
from kimi_free_api.emulator.answers import (
    answer_deltas,
    expected_answer,
    expected_thinking,
    search_hits,
    split_evenly,
    thinking_deltas,
    wire_answer,
)
from kimi_free_api.emulator.ids import digits, new_id, stable_id


def test_answer_echoes_the_prompt_and_is_deterministic() -> None:
    config = EmulatorConfig(event_count=7)
    prompt = "x" * 100
    answer = expected_answer(prompt, config)
    assert answer.startswith("Echo: " + "x" * 80 + "\n")
    assert answer == expected_answer(prompt, config)
    assert answer != expected_answer("y" * 100, config)


def test_answer_contains_multibyte_text() -> None:
    answer = expected_answer("plain ascii", EmulatorConfig(event_count=2))
    assert re.search("[\u3040-\u9fff]", answer), "CJK"
    assert any(ord(c) > 0xFFFF or c == "✨" for c in answer), "an emoji"


def test_deltas_are_exactly_event_count_non_empty_pieces() -> None:
    for count in (1, 2, 12, 500):
        config = EmulatorConfig(event_count=count)
        deltas = answer_deltas("q", config)
        assert len(deltas) == count
        assert all(deltas)
        assert "".join(deltas) == expected_answer("q", config)


def test_citations_only_with_search_and_the_setting() -> None:
    config = EmulatorConfig(event_count=40, search_results=3, citation_style="private_use")
    cited = wire_answer("q", config, search=True)
    assert set(re.findall("[\ue000-\uf8ff]", cited)) == {chr(0xE001), chr(0xE002), chr(0xE003)}
    assert re.sub("[\ue000-\uf8ff]", "", cited) == expected_answer("q", config, search=True)
    plain = EmulatorConfig(event_count=40, citation_markers=False)
    assert wire_answer("q", plain, search=True) == expected_answer("q", plain)
    assert wire_answer("q", config) == expected_answer("q", config), "no markers without search"


@pytest.mark.parametrize(
    ("style", "marker"),
    [
        ("kimi", "\ue3a0cite(?:\ue3a3web_search:1#[1-3])+\ue3a8"),
        ("tool", "(?:\U0001f6e0web_search:1#[1-3]\U0001f6e0)+"),
    ],
)
def test_citation_markers_follow_the_2026_grammar(style: str, marker: str) -> None:
    # Evidence row 46: whole sequences, some citing two hits at once.
    config = EmulatorConfig(event_count=40, search_results=3, citation_style=style)
    cited = wire_answer("q", config, search=True)
    markers = re.findall(marker, cited)
    assert len(markers) >= 3
    assert any(m.count("web_search") == 2 for m in markers)
    assert re.sub(marker, "", cited) == expected_answer("q", config, search=True)


def test_thinking() -> None:
    config = EmulatorConfig(thinking_events=3)
    assert expected_thinking("q", config).startswith("Thinking about: q\n")
    assert "".join(thinking_deltas("q", config)) == expected_thinking("q", config)
    assert len(thinking_deltas("q", config)) == 3
    assert expected_thinking("q", EmulatorConfig(thinking_events=0)) == ""
    assert thinking_deltas("q", EmulatorConfig(thinking_events=0)) == []


def test_search_hits() -> None:
    hits = search_hits("q", EmulatorConfig(search_results=4))
    assert [hit.ref_index for hit in hits] == [1, 2, 3, 4]
    assert len({hit.url for hit in hits}) == 4
    assert all(re.match(r"^https://example\.(com|org|net)/kimi/[0-9a-f]{12}$", hit.url) for hit in hits)
    assert hits == search_hits("q", EmulatorConfig(search_results=4))
    assert search_hits("q", EmulatorConfig(search_results=0)) == []


def test_split_evenly_never_cuts_code_points() -> None:
    assert split_evenly("a🌏b你", 4) == ["a", "🌏", "b", "你"]


def test_ids() -> None:
    ids = {new_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.match(r"^[0-9a-v]{20}$", i) for i in ids)
    assert stable_id("token") == stable_id("token") != stable_id("other")
    assert re.match(r"^7\d{18}$", digits("user", "7", 19))

"""Search-result lines and token estimates."""

from __future__ import annotations

import pytest

from kimi_free_api.core.answer.citations import SOURCES_HEADER, Citations
from kimi_free_api.core.events import SearchResult
from kimi_free_api.core.usage.tokenizer import EstimateCounter
from kimi_free_api.core.usage.usage import Usage, estimate_tokens


def test_citation_lines_are_numbered() -> None:
    citations = Citations(silent=False)
    assert citations.add(SearchResult("First", "https://a.example/1")) == "【检索 1】 [First](https://a.example/1)\n"
    assert citations.add(SearchResult("Second", "https://b.example/2", "B", "s")) == (
        "【检索 2】 [Second](https://b.example/2)\n"
    )
    assert citations.sources() == (
        "\n\n搜索结果来自：\n【检索 1】 [First](https://a.example/1)\n\n【检索 2】 [Second](https://b.example/2)\n"
    )
    assert citations.sources().startswith(SOURCES_HEADER)


def test_citation_title_and_url_escaping() -> None:
    line = Citations(silent=False).add(SearchResult("a [b] \\ c\nd", "https://x.example/a b(c)"))
    assert line == "【检索 1】 [a \\[b\\] \\\\ c d](https://x.example/a%20b%28c%29)\n"


def test_silent_citations_show_nothing() -> None:
    citations = Citations(silent=True)
    assert citations.add(SearchResult("First", "https://a.example/1")) == ""
    assert citations.sources() == ""
    assert citations.silent


def test_no_results_no_sources() -> None:
    assert Citations(silent=False).sources() == ""


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("a", 1),
        ("abcd", 1),
        ("abcde", 2),
        ("hello world", 3),
        ("x" * 400, 100),
        ("你好世界", 4),
        ("こんにちは", 5),
        ("안녕", 2),
        ("ＡＢ", 2),
        ("\U00020000", 1),
        ("你好 world", 4),
        ("价格是 100 元。", 7),  # 。 (U+3002) counts as wide
        ("😀", 1),
        (" ", 1),
    ],
)
def test_estimate_tokens(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


def test_estimate_is_never_zero_for_text() -> None:
    assert all(estimate_tokens(chr(c)) == 1 for c in (0x20, 0x41, 0x4E00, 0x1F600))


def test_usage_counts_reasoning_inside_completion() -> None:
    usage = Usage.count(EstimateCounter(), prompt="hello", answer="你好", reasoning="abcd")
    assert usage == Usage(prompt_tokens=2, completion_tokens=3, reasoning_tokens=1)
    assert usage.total_tokens == 5
    assert Usage.count(EstimateCounter(), "", "", "") == Usage(0, 0, 0)

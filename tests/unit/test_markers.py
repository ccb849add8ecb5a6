"""MarkerStripper: Kimi's citation markers (evidence row 46, P4) removed whole, however the stream cuts them."""

from __future__ import annotations

import pytest

from kimi_free_api.upstream.markers import MAX_MARKER, MarkerStripper, may_hold

# The marker shapes of the 2026 captures, with our own sentences around them.
MARKERS = [
    "\ue3a0cite\ue3a3web_search:1#2\ue3a8",
    "\ue3a0cite\ue3a3web_search:1#2\ue3a3web_search:1#7\ue3a8",
    "\ue3a0article\ue3a3web_search:2#1\ue3a8",
    "\ue3a0article\ue3a3web_search:2#1\U0001f3a8",
    "\U0001f6e0web_search:1#5\U0001f6e0",
    "cite\U0001f6e0web_search:1#5\U0001f6e0",
    "article\U0001f6e0web_search:1#4\U0001f3a8",
    "cite\U0001f6e0https://news.example/a#:~:text=the%20quoted%20words\U0001f6e0",
]


def strip_all(pieces: list[str], stripper: MarkerStripper | None = None) -> tuple[list[str], str]:
    stripper = stripper or MarkerStripper()
    shown = [stripper.feed("0", piece) for piece in pieces]
    return shown, stripper.release()


@pytest.mark.parametrize("marker", MARKERS)
def test_each_marker_is_removed_whole(marker: str) -> None:
    text = f"Berlin has 3.7 million people.{marker} It is the capital 首都."
    shown, tail = strip_all([text])
    assert "".join(shown) + tail == "Berlin has 3.7 million people. It is the capital 首都."


@pytest.mark.parametrize("marker", MARKERS)
def test_every_cut_of_a_marker_is_held_back_until_it_completes(marker: str) -> None:
    text = f"One.{marker} Two."
    for cut in range(1, len(text)):
        for second in range(cut + 1, len(text)):
            shown, tail = strip_all([text[:cut], text[cut:second], text[second:]])
            assert "".join(shown) + tail == "One. Two.", (cut, second)
            assert not any("web_search" in piece or "\ue3a0" in piece for piece in shown)


def test_a_tail_that_never_completes_is_released_without_marker_characters() -> None:
    shown, tail = strip_all(["Last words.\ue3a0cite\ue3a3web_sea"])
    assert shown == ["Last words."]
    assert tail == "citeweb_sea"


def test_stray_marker_characters_are_removed() -> None:
    shown, tail = strip_all(["a\ue3a8b\U0001f3a8c\ue3a3d\ue001e"])
    assert "".join(shown) + tail == "abcde"


def test_a_lone_opener_far_from_the_end_is_not_held() -> None:
    text = "x\U0001f6e0" + "y" * (MAX_MARKER + 5)
    shown, tail = strip_all([text])
    assert shown == ["x" + "y" * (MAX_MARKER + 5)] and tail == ""


def test_a_trailing_cite_word_waits_for_the_next_piece() -> None:
    stripper = MarkerStripper()
    assert stripper.feed("0", "I cite") == "I "
    assert stripper.feed("0", "d it.") == "cited it."
    assert stripper.feed("0", "cite") == ""
    assert stripper.feed("0", "\U0001f6e0web_search:1#1\U0001f6e0 ok") == " ok"


def test_footnotes_use_the_numbering_given_and_drop_unknown_refs() -> None:
    stripper = MarkerStripper({2: 1, 7: 2}.get)
    shown = stripper.feed("0", "A\ue3a0cite\ue3a3web_search:1#2\ue3a3web_search:1#7\ue3a8 B🛠web_search:1#9🛠.")
    assert shown == "A[1][2] B."


def test_plain_text_takes_the_fast_path() -> None:
    assert not may_hold("An ordinary ASCII sentence, as most frames are.")
    assert not may_hold("数据模型 golf") and not may_hold("日本語のテキスト")
    assert may_hold("数据\ue3a0") and may_hold("we cite") and may_hold("an article") and may_hold("🛠")


def test_a_word_before_the_private_use_opener_is_the_readers() -> None:
    shown, tail = strip_all(["Sources I cite\ue3a0cite\ue3a3web_search:1#1\ue3a8 here."])
    assert "".join(shown) + tail == "Sources I cite here."

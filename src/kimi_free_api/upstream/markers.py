"""Removing Kimi's citation markers from answer text as it streams (evidence row 46, P4).

Kimi writes a citation as a whole sequence of characters, not as one character:

* U+E3A0, the word `cite` or `article`, then each reference after a U+E3A3, then U+E3A8:
  `\\ue3a0cite\\ue3a3web_search:1#2\\ue3a3web_search:1#4\\ue3a8`;
* a reference between two U+1F6E0 (🛠): `🛠web_search:1#5🛠`, also preceded by `cite` or `article`
  (`cite🛠…:~:text=…🛠`), or closed by U+1F3A8 (🎨) instead: `article🛠…🎨`;
* older answers used single private-use characters (U+E000–U+F8FF), which are removed too.

A marker may be cut between two frames, so a tail that could still grow into a marker is held back until the next
piece of the same block decides it; a held tail that never completes is released, minus the marker characters, when
the block or the answer ends. Markers are removed whole or, given a numbering, replaced by `[N]` footnotes numbered
like the search results the client is shown.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# Words that belong to the marker when they stand right before an opener (`cite🛠…`), and their beginnings, which
# a frame may end with (only where a word starts, so "alpha" is never held for its last letter).
_PREFIXES = ("cite", "article")
_STARTS = tuple(sorted({word[:n] for word in _PREFIXES for n in range(1, len(word) + 1)}, key=len, reverse=True))
# The last letters of those beginnings: one `in` test rules out most text ending in a word.
LAST_LETTERS = frozenset(word[-1] for word in _STARTS)
# A marker longer than this is not a marker: the opener was a stray character, and the text is shown.
MAX_MARKER = 512
_MARKER = re.compile(
    f"\ue3a0[^\ue3a0\ue3a8\U0001f3a8]{{0,{MAX_MARKER}}}[\ue3a8\U0001f3a8]"
    f"|(?:cite|article)?\U0001f6e0[^\U0001f6e0\U0001f3a8\ue3a0]{{0,{MAX_MARKER}}}[\U0001f6e0\U0001f3a8]"
)
# Whatever is left once the whole markers are gone: lone openers, closers and separators, old single markers.
MARKER_CHARS = re.compile("[\ue000-\uf8ff\U0001f6e0\U0001f3a8]")
_REFERENCE = re.compile(r"web_search:\d+#(\d+)")

# Answers the footnote number shown for Kimi's reference index, or None when no such search result was shown.
Numbering = Callable[[int], int | None]


def may_hold(text: str) -> bool:
    """Whether `text` needs the marker stripper at all: False for nearly all text, at the cost of an `in` test, an
    `isascii()` and, for other text, one regex scan. The translator inlines the same test on its hot path."""
    return (text[-1] in LAST_LETTERS and text.endswith(_STARTS)) or (
        not text.isascii() and MARKER_CHARS.search(text) is not None
    )


class MarkerStripper:
    """One per answer: holds back at most one unfinished marker, of the block that is being written."""

    __slots__ = ("_numbering", "held", "held_key")

    def __init__(self, numbering: Numbering | None = None) -> None:
        self._numbering = numbering
        self.held = ""
        self.held_key = ""

    def feed(self, key: str, text: str) -> str:
        """The part of `text` (following what was held for block `key`) that can be shown now."""
        if self.held:
            text = self.held + text
            self.held = ""
        elif MARKER_CHARS.search(text) is None and not text.endswith(_STARTS):
            return text  # the usual non-ASCII text: no marker character, no word a marker may follow
        if "\ue3a0" in text or "\U0001f6e0" in text:
            text = _MARKER.sub(self._replacement, text)
        cut = self._unfinished(text)
        if cut < len(text):
            self.held, self.held_key = text[cut:], key
            text = text[:cut]
        return MARKER_CHARS.sub("", text) if not text.isascii() else text

    def release(self) -> str:
        """The held tail, given up as a marker: shown without its marker characters."""
        held, self.held = self.held, ""
        return MARKER_CHARS.sub("", held)

    def _unfinished(self, text: str) -> int:
        """Where a tail that may still become a marker starts (len(text) when there is none)."""
        start = max(text.rfind("\ue3a0"), text.rfind("\U0001f6e0"))
        if start >= 0 and len(text) - start <= MAX_MARKER + 2:
            if text[start] == "\U0001f6e0":
                for prefix in _PREFIXES:
                    if text.endswith(prefix, 0, start):
                        return start - len(prefix)
            return start
        for word in _STARTS:
            if text.endswith(word):
                cut = len(text) - len(word)
                # At the very start the previous piece is unknown (plain text skips the stripper): hold to be safe.
                return len(text) if cut and text[cut - 1].isalnum() else cut
        return len(text)

    def _replacement(self, marker: re.Match[str]) -> str:
        numbering = self._numbering
        if numbering is None:
            return ""
        numbers = (numbering(int(index)) for index in _REFERENCE.findall(marker.group()))
        return "".join(f"[{number}]" for number in dict.fromkeys(numbers) if number is not None)

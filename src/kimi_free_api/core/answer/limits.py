"""Honouring `stop` sequences and `max_tokens` on an answer the upstream cannot limit itself.

Kimi's web chat takes neither, so the gateway cuts the relayed text: at the first stop sequence (which is not
included, as OpenAI does), or once the estimated completion tokens reach the budget (`finish_reason: "length"`).
While streaming, the last few characters are held back until it is clear they do not begin a stop sequence.
"""

from __future__ import annotations

from collections.abc import Sequence

from kimi_free_api.core.usage.usage import estimate_tokens


class OutputLimit:
    __slots__ = ("_held", "_hold", "_max_tokens", "_stops", "_used", "reason", "stop_sequence")

    def __init__(self, stops: Sequence[str], max_tokens: int | None) -> None:
        self._stops = tuple(s for s in stops if s)
        self._hold = max((len(s) for s in self._stops), default=1) - 1
        self._max_tokens = max_tokens
        self._used = 0
        self._held = ""
        self.reason: str | None = None
        # The stop sequence that cut the answer (Anthropic's responses name it).
        self.stop_sequence: str | None = None

    @classmethod
    def create(cls, stops: Sequence[str], max_tokens: int | None) -> OutputLimit | None:
        if not any(stops) and max_tokens is None:
            return None
        return cls(stops, max_tokens)

    def feed(self, text: str) -> str:
        """The part of `text` that may be shown now; once `reason` is set, nothing more is."""
        if self.reason is not None:
            return ""
        text = self._held + text
        self._held = ""
        for stop in self._stops:
            at = text.find(stop)
            if at >= 0:
                text = text[:at]
                self.reason = "stop"
                self.stop_sequence = stop  # each later match lies earlier in the text: the last one found cut it
        if self.reason is None and self._hold:
            cut = len(text) - self._hold
            # Hold back only a tail that could still become a stop sequence.
            tail_start = next(
                (i for i in range(max(cut, 0), len(text)) if any(s.startswith(text[i:]) for s in self._stops)),
                len(text),
            )
            text, self._held = text[:tail_start], text[tail_start:]
        return self._budget(text)

    def flush(self) -> str:
        """What was held back, once the answer is complete."""
        held, self._held = self._held, ""
        return "" if self.reason is not None else self._budget(held)

    def _budget(self, text: str) -> str:
        if self._max_tokens is None or not text:
            return text
        remaining = self._max_tokens - self._used
        cost = estimate_tokens(text)
        if cost <= remaining:
            self._used += cost
            return text
        # The longest prefix that still fits: estimate_tokens grows with the prefix, so bisect.
        low, high = 0, len(text)
        while low < high:
            middle = (low + high + 1) // 2
            if estimate_tokens(text[:middle]) <= remaining:
                low = middle
            else:
                high = middle - 1
        self._used += estimate_tokens(text[:low])
        self.reason = "length"
        return text[:low]

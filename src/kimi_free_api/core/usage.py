"""Token usage for responses.

Kimi's web chat reports no token counts. Until a real tokenizer is wired in, this is an estimate in the way
tokenizers of Chinese/English models behave on average: one token per CJK character, one per ~4 other characters.
It is never 0 or a constant, so clients that budget or compact by tokens keep working.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WIDE = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef\U00020000-\U0002fa1f]")


def estimate_tokens(text: str) -> int:
    if not text:
        return 0
    wide = len(_WIDE.findall(text))
    narrow = len(text) - wide
    return wide + (narrow + 3) // 4


@dataclass(slots=True, frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def estimate(cls, prompt: str, answer: str, reasoning: str) -> Usage:
        thinking = estimate_tokens(reasoning)
        return cls(estimate_tokens(prompt), estimate_tokens(answer) + thinking, thinking)

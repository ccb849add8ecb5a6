"""Token usage for responses.

Kimi's web chat reports no token counts, so the gateway counts the text itself: with a real BPE vocabulary
(core/usage/tokenizer.py), or with `estimate_tokens`, which follows how tokenizers of Chinese/English models behave on
average: one token per CJK character, one per ~4 other characters. The estimate also budgets `max_tokens`
(core/answer/limits.py), where it runs on every relayed delta.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Protocol

from kimi_free_api.core.access.requestlog import current_entry

_WIDE = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef\U00020000-\U0002fa1f]")


def estimate_tokens(text: str) -> int:
    if not text:
        return 0
    # What is left once the wide characters are removed, rather than a list of them: no object per character.
    narrow = len(_WIDE.sub("", text))
    wide = len(text) - narrow
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
    def count(cls, counter: TokenCounter, prompt: str, answer: str, reasoning: str) -> Usage:
        thinking = counter.count(reasoning)
        return cls(counter.count(prompt), counter.count(answer) + thinking, thinking)


class TokenCounter(Protocol):
    def count(self, text: str) -> int: ...


# Characters above which counting moves to a worker thread. The BPE engine is pure Python (about 0.15-1.5 µs a
# character, by how often its pieces recur): below this it holds the event loop for at most a few milliseconds;
# above, the loop keeps getting the interpreter back every switch interval (5 ms) while the thread counts.
_THREAD_ABOVE = 16 * 1024


async def measure(counter: TokenCounter, prompt: str, answer: str, reasoning: str) -> Usage:
    if len(prompt) + len(answer) + len(reasoning) > _THREAD_ABOVE:
        usage = await asyncio.to_thread(Usage.count, counter, prompt, answer, reasoning)
    else:
        usage = Usage.count(counter, prompt, answer, reasoning)
    entry = current_entry.get()
    if entry is not None:  # every surface counts here, so the request log learns the counts here
        entry.prompt_tokens = usage.prompt_tokens
        entry.completion_tokens = usage.completion_tokens
    return usage

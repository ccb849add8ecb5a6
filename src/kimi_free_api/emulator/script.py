"""Scripted answers: the test decides what Kimi writes next, word for word.

A queue of answer texts; each Chat request that gets as far as streaming takes the oldest one as its answer
(refused requests leave the queue alone). With the queue empty, answers are the usual deterministic echo. This is
how tool calls, malformed tool calls and repair rounds are tested end to end: the gateway cannot tell a scripted
answer from a generated one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from kimi_free_api.emulator.answers import split_evenly
from kimi_free_api.emulator.config import EmulatorConfig, InvalidSetting


class AnswerScript:
    def __init__(self) -> None:
        self._answers: deque[str] = deque()

    def add(self, answers: Iterable[object]) -> None:
        queued = list(answers)
        if not all(isinstance(answer, str) for answer in queued):
            raise InvalidSetting("answers", "must be an array of strings")
        self._answers.extend(str(answer) for answer in queued)

    def take(self) -> str | None:
        return self._answers.popleft() if self._answers else None

    def clear(self) -> None:
        self._answers.clear()

    def pending(self) -> list[str]:
        return list(self._answers)


def scripted_deltas(answer: str, config: EmulatorConfig) -> list[str]:
    """A scripted answer cut into `event_count` text frames (fewer when it is shorter than that)."""
    return split_evenly(answer, max(1, min(config.event_count, len(answer))))

"""The seam between upstream adapters and the OpenAI surface.

Adapters translate their wire protocol into these few events; the API layer renders them as streamed chunks or
as one aggregated message. They travel in lists, one list per network read, so a burst of frames costs one trip
through the machinery, not one per frame. Facts about the upstream chat itself (its id, whether it finished) are
properties of the stream (`core/ports.py`), not events.
"""

from __future__ import annotations

# Not frozen: a frozen dataclass's __init__ goes through object.__setattr__, which doubles the cost of the one
# object created per relayed frame.
from dataclasses import dataclass
from typing import Literal

FinishReason = Literal["stop", "length", "content_filter"]


@dataclass(slots=True)
class TextDelta:
    text: str


@dataclass(slots=True)
class ThinkingDelta:
    text: str


@dataclass(slots=True)
class SearchResult:
    title: str
    url: str
    site_name: str = ""
    snippet: str = ""


@dataclass(slots=True)
class Finished:
    reason: FinishReason = "stop"


ChatEvent = TextDelta | ThinkingDelta | SearchResult | Finished

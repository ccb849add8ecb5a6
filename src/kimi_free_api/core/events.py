"""The seam between upstream adapters and the OpenAI surface.

Adapters translate their wire protocol into these few events; the API layer renders them as streamed chunks or
as one aggregated message. Adapters yield them in lists (one list per network read) so a burst of frames costs one
trip through the async machinery, not one per frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FinishReason = Literal["stop", "length", "content_filter"]


@dataclass(slots=True, frozen=True)
class ChatStarted:
    """The upstream accepted the request; the chat now exists upstream and must be cleaned up."""

    chat_id: str
    message_id: str = ""


@dataclass(slots=True, frozen=True)
class TextDelta:
    text: str


@dataclass(slots=True, frozen=True)
class ThinkingDelta:
    text: str


@dataclass(slots=True, frozen=True)
class SearchResult:
    title: str
    url: str
    site_name: str = ""
    snippet: str = ""


@dataclass(slots=True, frozen=True)
class Finished:
    reason: FinishReason = "stop"
    message_id: str = ""


ChatEvent = ChatStarted | TextDelta | ThinkingDelta | SearchResult | Finished

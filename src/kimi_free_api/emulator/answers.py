"""Deterministic replies: the same prompt and settings always give the same text, so tests can predict it.

An answer starts with `Echo: ` and the first 80 characters of the prompt (proof that the prompt arrived), then one
line per attached file with its name, size and sha256 (proof that the bytes arrived intact), then words picked by
sha256 of the prompt, always including CJK and an emoji so UTF-8 handling gets exercised.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from kimi_free_api.emulator.config import EmulatorConfig

ECHO_CHARS = 80
CITATION_BASE = 0xE000  # citation_style private_use: the marker for search hit n (1-based) is chr(CITATION_BASE + n)
_CJK = ("数据", "模型", "你好", "世界", "月亮", "ありがとう")
_EMOJI = ("🙂", "🚀", "🌏", "✨")
_LATIN = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "café", "naïve", "Zürich")
_VOCABULARY = _LATIN + _CJK + _EMOJI
_SENTENCE_WORDS = 6
_HOSTS = ("example.com", "example.org", "example.net")


@dataclass(frozen=True)
class AttachedFile:
    """A file the Chat request referred to, as the emulator received it."""

    name: str
    size: int
    sha256: str

    @property
    def line(self) -> str:
        return f"File: {self.name} ({self.size} bytes, sha256 {self.sha256[:16]})\n"


@dataclass(frozen=True)
class SearchHit:
    ref_index: int
    title: str
    url: str
    site_name: str
    snippet: str
    publish_time: str


def _bytes(seed: str) -> Iterator[int]:
    for block in itertools.count():
        yield from hashlib.sha256(f"{block}\n{seed}".encode()).digest()


def _words(seed: str, count: int) -> list[str]:
    stream = _bytes(seed)
    first = [_CJK[next(stream) % len(_CJK)], _EMOJI[next(stream) % len(_EMOJI)]]
    return first + [_VOCABULARY[next(stream) % len(_VOCABULARY)] for _ in range(count - len(first))]


def citation_marker(refs: Sequence[int], style: str) -> str:
    """How Kimi cites search hits `refs` (their refIndex) inside the answer text (evidence row 46)."""
    if style == "private_use":
        return "".join(chr(CITATION_BASE + ref) for ref in refs)
    if style == "tool":
        return "".join(f"\U0001f6e0web_search:1#{ref}\U0001f6e0" for ref in refs)
    return "\ue3a0cite" + "".join(f"\ue3a3web_search:1#{ref}" for ref in refs) + "\ue3a8"


def _prose(seed: str, count: int, citations: int = 0, style: str = "kimi") -> str:
    """At least `count` words in sentences; with `citations`, every second sentence cites a search hit (every
    fourth cites two, so markers with several references occur)."""
    words = _words(seed, max(count, 2))
    sentences = [" ".join(words[i : i + _SENTENCE_WORDS]) + "." for i in range(0, len(words), _SENTENCE_WORDS)]
    if citations:
        for n in range(1, len(sentences), 2):
            first = n // 2 % citations + 1
            refs = [first, first % citations + 1] if n % 4 == 3 and citations > 1 else [first]
            sentences[n] += citation_marker(refs, style)
    return " ".join(sentences)


def split_evenly(text: str, pieces: int) -> list[str]:
    """`text` in exactly `pieces` non-empty parts (given at least that many characters), never inside a code point."""
    size = len(text)
    return [text[i * size // pieces : (i + 1) * size // pieces] for i in range(pieces)]


def wire_answer(
    prompt: str, config: EmulatorConfig, *, search: bool = False, files: Sequence[AttachedFile] = ()
) -> str:
    """The whole answer text for `prompt` as sent, citation markers included; `search` is whether the request
    turned web search on, `files` what it attached, in order."""
    citations = config.search_results if search and config.citation_markers else 0
    head = f"Echo: {prompt[:ECHO_CHARS]}\n" + "".join(file.line for file in files)
    return head + _prose("answer\n" + prompt, config.event_count, citations, config.citation_style)


def expected_answer(
    prompt: str, config: EmulatorConfig, *, search: bool = False, files: Sequence[AttachedFile] = ()
) -> str:
    """The answer as a reader sees it: the wire text without its citation markers."""
    return wire_answer(prompt, config.updated({"citation_markers": False}), search=search, files=files)


def answer_deltas(
    prompt: str, config: EmulatorConfig, *, search: bool = False, files: Sequence[AttachedFile] = ()
) -> list[str]:
    """The answer cut into exactly `event_count` pieces, one per `block.text.content` frame."""
    return split_evenly(wire_answer(prompt, config, search=search, files=files), config.event_count)


def research_question(prompt: str) -> dict[str, Any]:
    """The ask-user tool arguments a research run stops on (their shape as a 2026 client reads them)."""
    return {
        "questions": [
            {
                "question": f"Which aspect of '{prompt[:40]}' should the research focus on?",
                "type": "single",
                "options": [
                    {"option": "History", "description": "how it came to be", "recommended": True},
                    {"option": "Outlook", "description": "where it is going"},
                ],
            }
        ]
    }


def expected_thinking(prompt: str, config: EmulatorConfig) -> str:
    """The thinking text, shown when the request sets `options.thinking` (empty when `thinking_events` is 0)."""
    if not config.thinking_events:
        return ""
    return f"Thinking about: {prompt[:40]}\n" + _prose("thinking\n" + prompt, config.thinking_events)


def thinking_deltas(prompt: str, config: EmulatorConfig) -> list[str]:
    thinking = expected_thinking(prompt, config)
    return split_evenly(thinking, config.thinking_events) if thinking else []


def search_hits(prompt: str, config: EmulatorConfig) -> list[SearchHit]:
    hits = []
    for n in range(1, config.search_results + 1):
        seed = f"search {n}\n{prompt}"
        key = hashlib.sha256(seed.encode()).hexdigest()
        host = _HOSTS[n % len(_HOSTS)]
        hits.append(
            SearchHit(
                ref_index=n,
                title=f"{_prose(seed, 3).rstrip('.')} ({n})",
                url=f"https://{host}/kimi/{key[:12]}",
                site_name=host,
                snippet=_prose(seed + "\nsnippet", 12),
                publish_time=f"2025-{int(key[12], 16) % 12 + 1:02d}-{int(key[13], 16) + 1:02d}T08:00:00Z",
            )
        )
    return hits

"""Translating G3 Chat stream frames (`op`/`mask` updates of chat, message and blocks) into core events.

Accepted variants, since the protocol document leaves them open: camelCase or snake_case keys; thinking as
`block.think`, as `block.text` flagged `thinking`, or as text inside a running `STAGE_NAME_THINKING` stage;
search results as `block.search.webPages` or as a `$web_search` tool block plus `message.refs.searchChunks`
(deduplicated by URL); `append` frames carrying a delta or the whole text so far (a setting).
"""

from __future__ import annotations

import re
from typing import Any

from kimi_free_api.core.events import (
    ChatEvent,
    Finished,
    FinishReason,
    SearchResult,
    TextDelta,
    ThinkingDelta,
)
from kimi_free_api.upstream.errors import classify_error_object

# Kimi marks citations inside answer text with private-use characters that mean nothing to other clients.
_CITATION_MARKERS = re.compile("[\ue000-\uf8ff]")


def _get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _results(items: Any) -> list[SearchResult]:
    found: list[SearchResult] = []
    if not isinstance(items, list):
        return found
    for item in items:
        if not isinstance(item, dict):
            continue
        hit = _get(item, "searchResult", "search_result")
        if not isinstance(hit, dict):
            hit = item
        base = hit["base"] if isinstance(hit.get("base"), dict) else hit
        url = base.get("url")
        if isinstance(url, str) and url:
            found.append(
                SearchResult(
                    title=str(base.get("title") or url),
                    url=url,
                    site_name=str(_get(base, "siteName", "site_name") or ""),
                    snippet=str(base.get("snippet") or ""),
                )
            )
    return found


class FrameTranslator:
    """Stateful: one per upstream stream."""

    def __init__(self, cumulative: bool, strip_markers: bool) -> None:
        self._cumulative = cumulative
        self._strip_markers = strip_markers
        self.chat_id = ""
        self.message_id = ""
        self.finished = False
        self._finish_reason: FinishReason = "stop"
        self._thinking_blocks: set[str] = set()
        self._sent: dict[str, int] = {}
        self._stage_thinking = False
        self._urls: set[str] = set()

    def translate(self, frame: dict[str, Any], out: list[ChatEvent]) -> None:
        block = frame.get("block")
        if block is not None:
            self._block(frame.get("op"), frame.get("mask") or "", block, out)
            return
        if "heartbeat" in frame:
            return
        error = frame.get("error")
        if error:
            raise classify_error_object(error)
        chat = frame.get("chat")
        if isinstance(chat, dict) and chat.get("id") and not self.chat_id:
            self.chat_id = str(chat["id"])
        message = frame.get("message")
        if isinstance(message, dict):
            self._message(message, out)
        stages = _get(frame, "multiStage", "multi_stage")
        if isinstance(stages, dict):
            self._stages(stages)
        if "done" in frame:
            self.finished = True
            out.append(Finished(self._finish_reason))

    def _message(self, message: dict[str, Any], out: list[ChatEvent]) -> None:
        role = message.get("role")
        if role == "assistant" and message.get("id"):
            self.message_id = str(message["id"])
        status = str(message.get("status") or "")
        if "TRUNCAT" in status or "LENGTH" in status:
            self._finish_reason = "length"
        refs = message.get("refs")
        if isinstance(refs, dict):
            self._search(_results(_get(refs, "searchChunks", "search_chunks")), out)

    def _stages(self, stages: dict[str, Any]) -> None:
        for stage in stages.get("stages") or ():
            if isinstance(stage, dict) and stage.get("name") == "STAGE_NAME_THINKING":
                self._stage_thinking = "COMPLETED" not in str(stage.get("status") or "")

    def _search(self, results: list[SearchResult], out: list[ChatEvent]) -> None:
        for result in results:
            if result.url not in self._urls:
                self._urls.add(result.url)
                out.append(result)

    def _block(self, op: Any, mask: str, block: dict[str, Any], out: list[ChatEvent]) -> None:
        # The hot path: one call per answer frame, so the text-block case is kept flat.
        text = block.get("text")
        if type(text) is dict:
            key = block.get("id") or "text"
            if self._stage_thinking or text.get("flags") == "thinking":
                self._thinking_blocks.add(key)
            thinking = key in self._thinking_blocks
            content = text.get("content")
        else:
            think = block.get("think")
            if type(think) is not dict:
                self._other_block(block, out)
                return
            key = "think:" + str(block.get("id") or "")
            thinking = True
            content = think.get("content")
        if not content or type(content) is not str:
            return
        # A delta is passed on whole; a whole text (a `set`, or cumulative appends) only for its unseen tail.
        sent = self._sent.get(key, 0)
        if op == "set" or self._cumulative or not mask.endswith(".content"):
            if len(content) <= sent:
                return
            content = content[sent:]
        self._sent[key] = sent + len(content)
        # isascii() answers for most text in a few nanoseconds; only other text is searched for markers.
        if self._strip_markers and not content.isascii() and _CITATION_MARKERS.search(content):
            content = _CITATION_MARKERS.sub("", content)
            if not content:
                return
        out.append(ThinkingDelta(content) if thinking else TextDelta(content))

    def _other_block(self, block: dict[str, Any], out: list[ChatEvent]) -> None:
        stages = _get(block, "multiStage", "multi_stage")
        if isinstance(stages, dict):
            self._stages(stages)
            return
        search = block.get("search")
        if isinstance(search, dict):
            self._search(_results(_get(search, "webPages", "web_pages")), out)
            return
        tool = block.get("tool")
        if isinstance(tool, dict) and tool.get("name") in (None, "$web_search"):
            self._search(_results(tool.get("contents")), out)

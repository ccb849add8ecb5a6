"""Translating G3 Chat stream frames (`op`/`mask` updates of chat, message and blocks) into core events.

Accepted variants, since the protocol document leaves them open: camelCase or snake_case keys; thinking as
`block.think`, as `block.text` flagged `thinking`, as text inside a `STAGE_NAME_THINKING` stage block (its
`parentId`), or as unparented text while such a stage runs and no think block was seen; search results as
`block.search.webPages` or as a `$web_search` tool block plus `message.refs.searchChunks` (deduplicated by URL);
`append` frames carrying a delta or the whole text so far (a setting).

Failures inside the answer arrive as `block.exception` (evidence row 48): an overload before any output is a
503 the service fails over on; later, the client gets an error event instead of a clean stop. A research run that
stops to ask the user (`STATUS_ASK_USER_QUESTION`, with an ask-user tool block) ends with that question as the
answer. Whatever the adapter does not recognise is noted by the drift monitor (`upstream/drift.py`), and an answer
that ends with nothing in it is a 502 saying that Kimi's format seems to have changed.
"""

from __future__ import annotations

from typing import Any

from kimi_free_api.core.errors import AnswerFormatChanged, UpstreamError, UpstreamUnavailable
from kimi_free_api.core.events import (
    ChatEvent,
    Finished,
    FinishReason,
    SearchResult,
    TextDelta,
    ThinkingDelta,
)
from kimi_free_api.redact import redact
from kimi_free_api.upstream.drift import drift
from kimi_free_api.upstream.errors import classify_error_object
from kimi_free_api.upstream.markers import LAST_LETTERS, MARKER_CHARS, MarkerStripper, may_hold
from kimi_free_api.upstream.questions import ASK_USER_STATUS, AskUserTool, is_ask_user_tool

# Reasons of `block.exception` that mean "busy, try again" rather than "this request failed".
_BUSY_WORDS = ("OVERLOAD", "BUSY", "UNAVAILABLE", "TOO_MANY")
_KNOWN_REASONS = frozenset({"REASON_COMPLETION_OVERLOADED"})
# Stage statuses: the 2026 lifecycle is START then END; older shapes said RUNNING and COMPLETED.
_STAGE_ENDS = ("END", "DONE", "FINISH", "COMPLETE", "CANCEL", "FAIL", "STOP")
_STAGE_RUNS = ("START", "RUNNING", "PROGRESS", "PROCESSING", "PENDING")
_MESSAGE_STATUSES = frozenset(
    {"", "MESSAGE_STATUS_GENERATING", "MESSAGE_STATUS_COMPLETED", "MESSAGE_STATUS_FAILED", "MESSAGE_STATUS_CANCELLED"}
)
_CHAT_STATUSES = frozenset({"", "STATUS_GENERATING", "STATUS_COMPLETED", ASK_USER_STATUS})
# Every key a frame without a block may carry; any other is noted as drift.
_FRAME_KEYS = frozenset(
    {"op", "mask", "eventOffset", "event_offset", "notification", "heartbeat", "error", "done"}
    | {"chat", "message", "multiStage", "multi_stage"}
)
_MASKS = frozenset(
    {
        "",
        "chat",
        "chat.status",
        "message",
        "message.status",
        "message.refs",
        "message.refs.searchChunks",
        "message.refs.search_chunks",
        "multiStage",
        "multi_stage",
        "block.multiStage",
        "block.multi_stage",
        "block.search",
        "block.search.webPages",
        "block.search.web_pages",
        "block.tool",
        "block.tool.args",
        "block.tool.contents",
        "block.tool.status",
        "block.exception",
    }
)


def _get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _results(items: Any) -> list[tuple[Any, SearchResult]]:
    """Search hits with Kimi's reference index of each (None when it has none)."""
    found: list[tuple[Any, SearchResult]] = []
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
            result = SearchResult(
                title=str(base.get("title") or url),
                url=url,
                site_name=str(_get(base, "siteName", "site_name") or ""),
                snippet=str(base.get("snippet") or ""),
            )
            found.append((_get(hit, "refIndex", "ref_index"), result))
    return found


def _stage_running(status: str) -> bool:
    if any(word in status for word in _STAGE_ENDS):
        return False
    if any(word in status for word in _STAGE_RUNS):
        return True
    drift.note("stage status", status)
    return False  # an unknown status must not hide the answer in the reasoning


def exception_error(exception: Any, retry_after_s: float) -> UpstreamError:
    """`block.exception`: `{error: {reason, severity, localizedMessage: {locale, message}}}`, either casing."""
    error = exception.get("error") if isinstance(exception, dict) else None
    if not isinstance(error, dict):
        error = exception if isinstance(exception, dict) else {}
    reason = str(error.get("reason") or "")
    localized = _get(error, "localizedMessage", "localized_message")
    text = localized.get("message") if isinstance(localized, dict) else error.get("message")
    shown = redact(str(text or "").strip()) or reason or "no reason given"
    if reason not in _KNOWN_REASONS:
        drift.note("block.exception", exception)
    if any(word in reason for word in _BUSY_WORDS):
        return UpstreamUnavailable(f"Kimi is overloaded: {shown}", retry_after=retry_after_s)
    return UpstreamError(f"Kimi could not finish the answer: {shown}")


class FrameTranslator:
    """Stateful: one per upstream stream."""

    def __init__(
        self, cumulative: bool, strip_markers: bool, footnotes: bool = False, overload_retry_after_s: float = 1.0
    ) -> None:
        """`overload_retry_after_s`: the wait suggested after Kimi reported an overload (another account is tried
        at once regardless)."""
        self._cumulative = cumulative
        self._overload_retry_after_s = overload_retry_after_s
        self._strip_markers = strip_markers
        self.chat_id = ""
        self.message_id = ""
        self.finished = False
        # The answer stopped on a question to the user while Kimi keeps the stream open.
        self.parked = False
        self._finish_reason: FinishReason = "stop"
        self._thinking_blocks: set[str] = set()
        self._thinking_stages: set[str] = set()
        self._sent: dict[str, int] = {}
        self._stage_thinking = False
        self._saw_think = False
        self._urls: set[str] = set()
        self._footnotes: dict[int, int] = {}
        self._markers = MarkerStripper(self._footnotes.get if footnotes else None)
        self._held_thinking = False
        self._asks: dict[str, AskUserTool] = {}
        self._last_status = ""

    def translate(self, frame: dict[str, Any], out: list[ChatEvent]) -> None:
        block = frame.get("block")
        if block is not None:
            self._block(frame.get("op"), frame.get("mask") or "", block, out)
            return
        if "heartbeat" in frame:
            return
        error = frame.get("error")
        if error:
            self._release(out)
            raise classify_error_object(error)
        mask = frame.get("mask") or ""
        if mask not in _MASKS:
            drift.note("mask", mask)
        chat = frame.get("chat")
        if isinstance(chat, dict):
            self._chat(chat, out)
        message = frame.get("message")
        if isinstance(message, dict):
            self._message(message, out)
        stages = _get(frame, "multiStage", "multi_stage")
        if isinstance(stages, dict):
            self._stages(stages, "")
        if "done" in frame and not self.finished:
            self._finish(out)
        if frame.keys() - _FRAME_KEYS:
            drift.note("frame", frame)

    def _finish(self, out: list[ChatEvent]) -> None:
        self._release(out)
        if not self._sent and not self._urls and self._finish_reason == "stop":
            drift.note("empty answer", {"message_status": self._last_status})
            raise AnswerFormatChanged(
                "Kimi ended the answer without any content the gateway recognises; Kimi's answer format seems to "
                "have changed (the gateway's log names the unknown frame shapes)"
            )
        self.finished = True
        out.append(Finished(self._finish_reason))

    def _chat(self, chat: dict[str, Any], out: list[ChatEvent]) -> None:
        if chat.get("id") and not self.chat_id:
            self.chat_id = str(chat["id"])
        status = str(chat.get("status") or "")
        if status not in _CHAT_STATUSES:
            drift.note("chat status", status)
        if status == ASK_USER_STATUS:
            self._park(out)

    def _message(self, message: dict[str, Any], out: list[ChatEvent]) -> None:
        role = message.get("role")
        if role == "assistant" and message.get("id"):
            self.message_id = str(message["id"])
        status = str(message.get("status") or "")
        if status:
            self._last_status = status
        if "TRUNCAT" in status or "LENGTH" in status:
            self._finish_reason = "length"
        elif status.endswith(ASK_USER_STATUS):
            self._park(out)
        elif status not in _MESSAGE_STATUSES:
            drift.note("message status", status)
        refs = message.get("refs")
        if isinstance(refs, dict):
            self._search(_results(_get(refs, "searchChunks", "search_chunks")), out)

    def _stages(self, stages: dict[str, Any], block_id: str) -> None:
        for stage in stages.get("stages") or ():
            if isinstance(stage, dict) and stage.get("name") == "STAGE_NAME_THINKING":
                self._stage_thinking = _stage_running(str(stage.get("status") or ""))
                if block_id:
                    self._thinking_stages.add(block_id)

    def _search(self, results: list[tuple[Any, SearchResult]], out: list[ChatEvent]) -> None:
        for position, (ref_index, result) in enumerate(results, 1):
            if result.url not in self._urls:
                self._urls.add(result.url)
                out.append(result)
                # `webPages` carry no refIndex: their place in the list stands in for it.
                ref = ref_index if isinstance(ref_index, int) else position
                self._footnotes.setdefault(ref, len(self._urls))

    def _thinking_text(self, key: str, block: dict[str, Any], text: dict[str, Any]) -> bool:
        """Whether a text block is thinking: by its flag, by its parent, or by a running stage (older shape)."""
        flags = text.get("flags")
        if flags == "thinking" or _get(block, "parentId", "parent_id") in self._thinking_stages:
            self._thinking_blocks.add(key)
            return True
        if self._stage_thinking and not self._saw_think and flags != "answer":
            self._thinking_blocks.add(key)
            return True
        return False

    def _block(self, op: Any, mask: str, block: dict[str, Any], out: list[ChatEvent]) -> None:
        # The hot path: one call per answer frame, so the text-block case is kept flat.
        text = block.get("text")
        if type(text) is dict:
            key = block.get("id") or "text"
            thinking = key in self._thinking_blocks
            if not thinking and (self._stage_thinking or self._thinking_stages or "flags" in text):
                thinking = self._thinking_text(key, block, text)
            content = text.get("content")
        else:
            think = block.get("think")
            if type(think) is not dict:
                self._other_block(op, mask, block, out)
                return
            key = "think:" + str(block.get("id") or "")
            thinking = self._saw_think = True
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
        # isascii() answers for most text in a few nanoseconds; only other text (or a held marker) is examined.
        if self._strip_markers and (
            self._markers.held
            or (content[-1] in LAST_LETTERS and may_hold(content))
            or (not content.isascii() and MARKER_CHARS.search(content))
        ):
            content = self._strip(key, thinking, content, out)
            if not content:
                return
        out.append(ThinkingDelta(content) if thinking else TextDelta(content))

    def _strip(self, key: str, thinking: bool, content: str, out: list[ChatEvent]) -> str:
        markers = self._markers
        if markers.held and markers.held_key != key:
            self._release(out)
        content = markers.feed(key, content)
        self._held_thinking = thinking
        return content

    def _release(self, out: list[ChatEvent]) -> None:
        """A held tail that never became a marker is shown after all (the block or the answer ended)."""
        if not self._markers.held:
            return
        tail = self._markers.release()
        if tail:
            out.append(ThinkingDelta(tail) if self._held_thinking else TextDelta(tail))

    def _other_block(self, op: Any, mask: str, block: dict[str, Any], out: list[ChatEvent]) -> None:
        if mask not in _MASKS:
            drift.note("mask", mask)
        stages = _get(block, "multiStage", "multi_stage")
        if isinstance(stages, dict):
            self._stages(stages, str(block.get("id") or ""))
            return
        search = block.get("search")
        if isinstance(search, dict):
            self._search(_results(_get(search, "webPages", "web_pages")), out)
            return
        tool = block.get("tool")
        if isinstance(tool, dict):
            self._tool(op, str(block.get("id") or ""), tool, out)
            return
        exception = block.get("exception")
        if exception is not None:
            self._release(out)
            raise exception_error(exception, self._overload_retry_after_s)
        drift.note("block", block)

    def _tool(self, op: Any, block_id: str, tool: dict[str, Any], out: list[ChatEvent]) -> None:
        name = tool.get("name")
        if name in (None, "$web_search") and block_id not in self._asks:
            self._search(_results(tool.get("contents")), out)
        ask = self._asks.get(block_id)
        if ask is None and is_ask_user_tool(tool):
            ask = self._asks[block_id] = AskUserTool()
        if ask is not None:
            ask.update(op, tool)

    def _park(self, out: list[ChatEvent]) -> None:
        """Kimi waits for the user's answer to its question: the question is the answer, and the turn ends."""
        if self.finished:
            return
        self._release(out)
        asks = [ask.question() for ask in self._asks.values()]
        question = "\n\n".join(text for text in asks if text) or "Kimi is waiting for more details before it goes on."
        out.append(TextDelta(("\n\n" if self._sent else "") + question))
        self._sent["ask_user"] = len(question)
        self.parked = self.finished = True
        out.append(Finished("stop"))

"""FrameTranslator: G3 frames (protocol document §4) built by hand, and the core events they become."""

from __future__ import annotations

from typing import Any

import pytest

from kimi_free_api.core.errors import (
    AccountBusy,
    ChatNotFound,
    ContentFiltered,
    GatewayError,
    QuotaExceeded,
    RateLimited,
    Unauthorized,
    UpstreamError,
    UpstreamUnavailable,
)
from kimi_free_api.core.events import (
    ChatEvent,
    Finished,
    FinishReason,
    SearchResult,
    TextDelta,
    ThinkingDelta,
)
from kimi_free_api.upstream.frames import FrameTranslator

Frame = dict[str, Any]
CHAT_ID = "d3rglnb12h610c3cc300"
ASSISTANT_ID = "d3rglnb12h610c3cc3a0"


def chat(chat_id: str = CHAT_ID) -> Frame:
    return {
        "op": "set",
        "eventOffset": 1,
        "chat": {"id": chat_id, "name": "Untitled Chat", "createTime": "2026-01-01T00:00:00Z"},
    }


def user_echo() -> Frame:
    wrapped = "<contextual_request><current_user_query>Hi</current_user_query></contextual_request>"
    return {
        "op": "set",
        "mask": "message",
        "eventOffset": 2,
        "message": {
            "id": "d3rglnb12h610c3cc390",
            "role": "user",
            "status": "MESSAGE_STATUS_COMPLETED",
            "scenario": "SCENARIO_K2D5",
            "blocks": [{"id": "0_0", "text": {"content": wrapped}}],
        },
    }


def assistant(message_id: str = ASSISTANT_ID, status: str = "MESSAGE_STATUS_GENERATING") -> Frame:
    return {
        "op": "set",
        "mask": "message",
        "message": {"id": message_id, "parentId": "d3rglnb12h610c3cc390", "role": "assistant", "status": status},
    }


def status(value: str) -> Frame:
    return {
        "op": "set",
        "mask": "message.status",
        "message": {"id": ASSISTANT_ID, "role": "assistant", "status": value},
    }


def text(
    content: str, op: str = "append", mask: str = "block.text.content", block_id: str = "0_0", flags: str | None = None
) -> Frame:
    body: dict[str, Any] = {"content": content}
    if flags is not None:
        body["flags"] = flags
    return {"op": op, "mask": mask, "block": {"id": block_id, "parentId": "", "text": body}}


def think(content: str, op: str = "append", mask: str = "block.think.content", block_id: str = "think_0") -> Frame:
    return {"op": op, "mask": mask, "block": {"id": block_id, "think": {"content": content}}}


def stage(state: str, key: str = "multiStage") -> Frame:
    return {"op": "set", "mask": "multiStage", key: {"stages": [{"name": "STAGE_NAME_THINKING", "status": state}]}}


def page(url: str, title: str = "", site: str = "", snippet: str = "") -> dict[str, Any]:
    return {
        "title": title,
        "url": url,
        "siteName": site,
        "iconUrl": "https://icons.example/i.png",
        "snippet": snippet,
        "publishTime": "2026-01-01",
        "siteQuality": 1,
    }


def web_pages(*pages: Any) -> Frame:
    return {
        "op": "set",
        "mask": "block.search.webPages",
        "block": {"id": "search_0", "search": {"webPages": list(pages)}},
    }


def search_chunk(url: str, title: str, ref: int) -> dict[str, Any]:
    return {"searchResult": {"id": f"r{ref}", "refIndex": ref, "base": {"title": title, "url": url, "siteName": "S"}}}


DONE: Frame = {"done": {}}


def run(frames: list[Frame], *, cumulative: bool = False, strip_markers: bool = True) -> list[ChatEvent]:
    translator = FrameTranslator(cumulative=cumulative, strip_markers=strip_markers)
    out: list[ChatEvent] = []
    for frame in frames:
        translator.translate(frame, out)
    return out


def texts(events: list[ChatEvent]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for event in events:
        if isinstance(event, TextDelta):
            found.append(("text", event.text))
        elif isinstance(event, ThinkingDelta):
            found.append(("thinking", event.text))
    return found


# --- start and finish ---


def test_ordinary_answer() -> None:
    translator = FrameTranslator(cumulative=False, strip_markers=True)
    out: list[ChatEvent] = []
    for frame in [
        chat(),
        user_echo(),
        assistant(),
        text("Hel"),
        {"heartbeat": {}},
        text("lo"),
        status("MESSAGE_STATUS_COMPLETED"),
        DONE,
    ]:
        translator.translate(frame, out)
    assert out == [
        TextDelta("Hel"),
        TextDelta("lo"),
        Finished("stop"),
    ]
    assert translator.chat_id == CHAT_ID
    assert translator.message_id == ASSISTANT_ID
    assert translator.finished


def test_chat_and_user_echo_alone_start_nothing() -> None:
    translator = FrameTranslator(cumulative=False, strip_markers=True)
    out: list[ChatEvent] = []
    translator.translate(chat(), out)
    translator.translate(user_echo(), out)
    assert out == []
    assert translator.chat_id == CHAT_ID
    assert translator.message_id == ""


def test_first_chat_id_wins() -> None:
    translator = FrameTranslator(cumulative=False, strip_markers=True)
    for frame in (chat(), chat("cu93bmos8jdiak73ck1g"), assistant(), text("x"), DONE):
        translator.translate(frame, [])
    assert (translator.chat_id, translator.message_id) == (CHAT_ID, ASSISTANT_ID)


def test_the_last_assistant_message_id_is_kept() -> None:
    translator = FrameTranslator(cumulative=False, strip_markers=True)
    out: list[ChatEvent] = []
    for frame in (chat(), assistant(), assistant("other"), text("x"), DONE):
        translator.translate(frame, out)
    assert translator.message_id == "other"
    assert out == [TextDelta("x"), Finished("stop")]


def test_text_before_the_assistant_message_is_relayed() -> None:
    assert run([chat(), text("x")]) == [TextDelta("x")]


def test_done_after_text_finishes() -> None:
    assert run([text("x"), DONE]) == [TextDelta("x"), Finished("stop")]


def test_heartbeat_and_notification_emit_nothing() -> None:
    assert run([{"heartbeat": {}}, {"notification": {"type": "INFO", "message": "hi"}}, {"eventOffset": 7}]) == []


@pytest.mark.parametrize(
    ("final_status", "reason"),
    [
        ("MESSAGE_STATUS_COMPLETED", "stop"),
        ("MESSAGE_STATUS_TRUNCATED", "length"),
        ("MESSAGE_STATUS_LENGTH_LIMIT", "length"),
    ],
)
def test_finish_reason_from_message_status(final_status: str, reason: FinishReason) -> None:
    events = run([chat(), assistant(), text("x"), status(final_status), DONE])
    assert events[-1] == Finished(reason)


# --- thinking routing ---


def test_think_block_is_thinking() -> None:
    frames = [chat(), assistant(), think("Let me "), think("see."), text("Answer"), DONE]
    assert texts(run(frames)) == [("thinking", "Let me "), ("thinking", "see."), ("text", "Answer")]


def test_text_flagged_thinking_is_thinking_for_the_whole_block() -> None:
    frames = [
        chat(),
        assistant(),
        text("Hmm", block_id="0_0", flags="thinking"),
        text(" more", block_id="0_0"),  # later frames of that block need not repeat the flag
        text("Answer", block_id="1_0", flags="answer"),
        text("!", block_id="1_0"),
        DONE,
    ]
    assert texts(run(frames)) == [("thinking", "Hmm"), ("thinking", " more"), ("text", "Answer"), ("text", "!")]


@pytest.mark.parametrize("key", ["multiStage", "multi_stage"])
def test_text_inside_a_running_thinking_stage_is_thinking(key: str) -> None:
    frames = [
        chat(),
        assistant(),
        stage("STAGE_STATUS_RUNNING", key),
        text("pondering", block_id="0_0"),
        stage("STAGE_STATUS_COMPLETED", key),
        text("answer", block_id="1_0"),
        DONE,
    ]
    assert texts(run(frames)) == [("thinking", "pondering"), ("text", "answer")]


def test_text_inside_a_block_level_thinking_stage_is_thinking() -> None:
    def block_stage(state: str) -> Frame:
        return {
            "op": "set",
            "mask": "block.multiStage",
            "block": {"id": "stage_0", "multiStage": {"stages": [{"name": "STAGE_NAME_THINKING", "status": state}]}},
        }

    frames = [
        chat(),
        assistant(),
        block_stage("STAGE_STATUS_RUNNING"),
        text("pondering", block_id="0_0"),
        block_stage("STAGE_STATUS_COMPLETED"),
        text("answer", block_id="1_0"),
        DONE,
    ]
    assert texts(run(frames)) == [("thinking", "pondering"), ("text", "answer")]


def test_other_stages_do_not_switch_thinking_on() -> None:
    frame = {"multiStage": {"stages": [{"name": "STAGE_NAME_SEARCHING", "status": "STAGE_STATUS_RUNNING"}]}}
    assert texts(run([chat(), assistant(), frame, text("a"), DONE])) == [("text", "a")]


def test_think_and_text_blocks_with_the_same_id_are_tracked_apart() -> None:
    frames = [
        think("abc", op="set", mask="block.think", block_id="0"),
        text("abc", op="set", mask="block.text", block_id="0"),
    ]
    assert texts(run(frames)) == [("thinking", "abc"), ("text", "abc")]


# --- append modes ---


def test_delta_mode_passes_appends_through() -> None:
    frames = [assistant(), text("A"), text("A"), text("BC")]
    assert texts(run(frames)) == [("text", "A"), ("text", "A"), ("text", "BC")]


def test_cumulative_mode_passes_only_the_new_tail() -> None:
    frames = [assistant(), text("A"), text("AB"), text("AB"), text("ABC"), text("A")]
    assert texts(run(frames, cumulative=True)) == [("text", "A"), ("text", "B"), ("text", "C")]


def test_cumulative_mode_for_think_blocks() -> None:
    frames = [assistant(), think("I"), think("I think"), text("so")]
    assert texts(run(frames, cumulative=True)) == [("thinking", "I"), ("thinking", " think"), ("text", "so")]


def test_set_on_an_existing_block_emits_only_the_unseen_tail() -> None:
    frames = [
        assistant(),
        text("Hel"),
        text("lo"),
        text("Hello world", op="set", mask="block.text"),
        text("Hello", op="set", mask="block.text"),  # nothing new
        text("Hello world", op="set", mask="block.text.content"),
        text("!"),
    ]
    assert texts(run(frames)) == [("text", "Hel"), ("text", "lo"), ("text", " world"), ("text", "!")]


def test_append_to_a_whole_block_mask_is_read_as_the_whole_text() -> None:
    frames = [assistant(), text("ab", mask="block.text"), text("abc", mask="block.text"), DONE]
    assert texts(run(frames)) == [("text", "ab"), ("text", "c")]


def test_set_starts_a_fresh_block_whole() -> None:
    assert texts(run([assistant(), text("first", op="set", mask="block.text", block_id="9_9")])) == [("text", "first")]


@pytest.mark.parametrize("content", ["", None, 42, ["x"]])
def test_empty_or_non_string_content_is_ignored(content: Any) -> None:
    frame = {"op": "append", "mask": "block.text.content", "block": {"id": "0_0", "text": {"content": content}}}
    assert run([frame]) == []


def test_block_without_text_think_search_or_tool_is_ignored() -> None:
    assert run([{"op": "set", "mask": "block.image", "block": {"id": "i", "image": {"url": "https://x/y.png"}}}]) == []


# --- search results ---


def test_web_pages_become_search_results() -> None:
    events = run(
        [
            chat(),
            assistant(),
            web_pages(
                page("https://a.example/1", "First", "A site", "snip"),
                page("https://b.example/2"),  # no title: the URL stands in
                {"title": "no url"},
                {"title": "empty url", "url": ""},
                "not a page",
            ),
            DONE,
        ]
    )
    assert events == [
        SearchResult("First", "https://a.example/1", "A site", "snip"),
        SearchResult("https://b.example/2", "https://b.example/2", "", ""),
        Finished("stop"),
    ]


def test_search_before_the_assistant_message_starts_first() -> None:
    events = run([chat(), web_pages(page("https://a.example/", "A"))])
    assert events == [SearchResult("A", "https://a.example/", "", "")]


def test_web_search_tool_block_and_search_chunks_are_deduplicated() -> None:
    frames: list[Frame] = [
        chat(),
        assistant(),
        {
            "op": "set",
            "mask": "block.tool",
            "block": {
                "id": "tool_0",
                "tool": {"toolCallId": "c1", "name": "$web_search", "status": "TOOL_STATUS_RUNNING"},
            },
        },
        {"op": "append", "mask": "block.tool.args", "block": {"id": "tool_0", "tool": {"args": '{"queries":["q"]}'}}},
        {
            "op": "set",
            "mask": "block.tool.contents",
            "block": {
                "id": "tool_0",
                "tool": {
                    "name": "$web_search",
                    "status": "TOOL_STATUS_COMPLETED",
                    "contents": [
                        search_chunk("https://a.example/", "A", 1),
                        search_chunk("https://b.example/", "B", 2),
                    ],
                },
            },
        },
        {
            "op": "set",
            "mask": "message.refs.searchChunks",
            "message": {
                "id": ASSISTANT_ID,
                "role": "assistant",
                "refs": {
                    "searchChunks": [
                        search_chunk("https://b.example/", "B again", 2),
                        search_chunk("https://c.example/", "C", 3),
                    ]
                },
            },
        },
        text("Answer"),
        DONE,
    ]
    events = run(frames)
    assert events == [
        SearchResult("A", "https://a.example/", "S", ""),
        SearchResult("B", "https://b.example/", "S", ""),
        SearchResult("C", "https://c.example/", "S", ""),
        TextDelta("Answer"),
        Finished("stop"),
    ]


def test_dedupe_across_web_pages_and_search_chunks() -> None:
    refs = {"message": {"refs": {"searchChunks": [search_chunk("https://a.example/", "A2", 1)]}}}
    events = run([web_pages(page("https://a.example/", "A")), refs, web_pages(page("https://a.example/", "A3"))])
    assert [e for e in events if isinstance(e, SearchResult)] == [SearchResult("A", "https://a.example/", "", "")]


def test_tool_blocks_of_other_tools_are_ignored() -> None:
    frame = {
        "op": "set",
        "mask": "block.tool.contents",
        "block": {
            "id": "t",
            "tool": {"name": "$code_runner", "contents": [search_chunk("https://a.example/", "A", 1)]},
        },
    }
    assert run([frame]) == []


def test_snake_case_keys() -> None:
    frames: list[Frame] = [
        {"op": "set", "chat": {"id": CHAT_ID}},
        {"op": "set", "message": {"id": ASSISTANT_ID, "role": "assistant"}},
        {"op": "set", "multi_stage": {"stages": [{"name": "STAGE_NAME_THINKING", "status": "STAGE_STATUS_RUNNING"}]}},
        text("t", block_id="a"),
        {"op": "set", "multi_stage": {"stages": [{"name": "STAGE_NAME_THINKING", "status": "STAGE_STATUS_COMPLETED"}]}},
        {
            "op": "set",
            "block": {"search": {"web_pages": [{"title": "P", "url": "https://p.example/", "site_name": "PS"}]}},
        },
        {
            "op": "set",
            "block": {
                "tool": {
                    "name": "$web_search",
                    "contents": [
                        {"search_result": {"base": {"title": "Q", "url": "https://q.example/", "site_name": "QS"}}}
                    ],
                }
            },
        },
        {"message": {"refs": {"search_chunks": [{"search_result": {"base": {"url": "https://r.example/"}}}]}}},
        text("answer", block_id="b"),
        DONE,
    ]
    assert run(frames) == [
        ThinkingDelta("t"),
        SearchResult("P", "https://p.example/", "PS", ""),
        SearchResult("Q", "https://q.example/", "QS", ""),
        SearchResult("https://r.example/", "https://r.example/", "", ""),
        TextDelta("answer"),
        Finished("stop"),
    ]


# --- citation markers ---


def test_private_use_markers_are_stripped() -> None:
    frames = [assistant(), text("Paris\ue200\ue201 is the capital\uf8ff.\ue000"), text("\ue123"), text("你好\ue001")]
    assert texts(run(frames, strip_markers=True)) == [("text", "Paris is the capital."), ("text", "你好")]


def test_private_use_markers_are_kept_when_not_stripping() -> None:
    frames = [assistant(), text("Paris\ue200 is"), text("\ue123")]
    assert texts(run(frames, strip_markers=False)) == [("text", "Paris\ue200 is"), ("text", "\ue123")]


def test_characters_next_to_the_private_use_area_are_kept() -> None:
    kept = "\ud7ff\uf900\U000f0000\U0010ffff"  # Hangul end, CJK compatibility, the supplementary private areas
    assert texts(run([assistant(), text(kept)])) == [("text", kept)]


def test_markers_in_thinking_are_stripped_too() -> None:
    assert texts(run([assistant(), think("why\ue000")])) == [("thinking", "why")]


def test_cumulative_offsets_count_the_markers() -> None:
    frames = [assistant(), text("A\ue000"), text("A\ue000B"), text("A\ue000B\ue001C")]
    assert texts(run(frames, cumulative=True)) == [("text", "A"), ("text", "B"), ("text", "C")]


def test_a_marker_only_first_delta_does_not_start_the_chat() -> None:
    assert run([text("\ue000")]) == []


# --- errors ---


@pytest.mark.parametrize(
    ("error", "cls", "status"),
    [
        ({"code": "resource_exhausted", "message": "chat.user_stream_pushing"}, AccountBusy, 429),
        ({"code": "resource_exhausted", "message": "slow down"}, RateLimited, 429),
        ({"code": "resource_exhausted", "message": "usage limit reached"}, QuotaExceeded, 429),
        ({"code": "unauthenticated", "message": "token expired"}, Unauthorized, 401),
        (
            {"code": "permission_denied", "message": "no", "details": [{"reason": "chat.forbidden"}]},
            ContentFiltered,
            400,
        ),
        ({"error_type": "chat.not_found", "message": "gone"}, ChatNotFound, 404),
        ({"code": "unavailable", "message": "maintenance"}, UpstreamUnavailable, 503),
        ({"code": "internal", "message": "boom"}, UpstreamError, 502),
        ("something broke", UpstreamError, 502),
    ],
)
def test_error_frame_raises_the_classified_error(error: Any, cls: type[GatewayError], status: int) -> None:
    translator = FrameTranslator(cumulative=False, strip_markers=True)
    out: list[ChatEvent] = []
    translator.translate(assistant(), out)
    translator.translate(text("partial"), out)
    with pytest.raises(GatewayError) as caught:
        translator.translate({"error": error}, out)
    assert type(caught.value) is cls
    assert caught.value.status == status
    # What was translated before the error is still there for the caller.
    assert out == [TextDelta("partial")]
    assert not translator.finished

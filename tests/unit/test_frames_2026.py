"""FrameTranslator fed the frame sequences that the 2026 evidence describes (kimi-2026-evidence.md rows 28, 37, 42,
46, 48 and §3 P1, P2, P4, P6): field names and order as captured, the text our own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from kimi_free_api.core.errors import AnswerFormatChanged, GatewayError, UpstreamError, UpstreamUnavailable
from kimi_free_api.core.events import ChatEvent, Finished, SearchResult, TextDelta, ThinkingDelta
from kimi_free_api.upstream.drift import drift
from kimi_free_api.upstream.frames import FrameTranslator

Frame = dict[str, Any]
CHAT_ID = "19b79776-2c4e-4d1a-9f3b-091037ea12d9"
USER_ID = "19b79776-2c4e-4d1a-9f3b-091037ea1300"
ASSISTANT_ID = "19b79776-2c4e-4d1a-9f3b-091037ea1301"


@pytest.fixture(autouse=True)
def fresh_drift() -> Iterator[None]:
    drift.reset()
    yield
    drift.reset()


def preamble() -> list[Frame]:
    """Frames 1-3 of every 2026 capture: the chat, the user's message, the assistant's message being generated."""
    return [
        {"op": "set", "eventOffset": 1, "chat": {"id": CHAT_ID, "name": "New chat"}},
        {
            "op": "set",
            "mask": "message",
            "eventOffset": 2,
            "message": {"id": USER_ID, "role": "user", "status": "MESSAGE_STATUS_COMPLETED", "blocks": []},
        },
        {
            "op": "set",
            "mask": "message",
            "eventOffset": 3,
            "message": {
                "id": ASSISTANT_ID,
                "parentId": USER_ID,
                "role": "assistant",
                "status": "MESSAGE_STATUS_GENERATING",
            },
        },
    ]


def stage(block_id: str, status: str) -> Frame:
    return {
        "op": "set",
        "mask": "block.multiStage",
        "block": {
            "id": block_id,
            "parentId": ASSISTANT_ID,
            "multiStage": {"stages": [{"name": "STAGE_NAME_THINKING", "status": status}]},
        },
    }


def block(kind: str, block_id: str, content: str, op: str = "append", parent: str = ASSISTANT_ID) -> Frame:
    body: Frame = {"id": block_id, kind: {"content": content}}
    if op == "set":
        body["parentId"] = parent
    return {"op": op, "mask": f"block.{kind}" + (".content" if op == "append" else ""), "block": body}


def completed() -> list[Frame]:
    return [
        {"op": "set", "mask": "message.status", "message": {"id": ASSISTANT_ID, "status": "MESSAGE_STATUS_COMPLETED"}},
        {"eventOffset": 20, "done": {}},
    ]


def exception(reason: str, message: str, snake: bool = False) -> Frame:
    localized = {"locale": "en-US", "message": message}
    error: Frame = {"reason": reason, "severity": "SEVERITY_BLOCK_RETRACT"}
    error["localized_message" if snake else "localizedMessage"] = localized
    return {"op": "set", "mask": "block.exception", "block": {"id": "2", "exception": {"error": error}}}


def run(frames: list[Frame], *, footnotes: bool = False) -> list[ChatEvent]:
    translator = FrameTranslator(cumulative=False, strip_markers=True, footnotes=footnotes)
    out: list[ChatEvent] = []
    for frame in frames:
        translator.translate(frame, out)
    return out


def split(events: list[ChatEvent]) -> tuple[str, str]:
    """(answer, reasoning) as a client would assemble them."""
    answer = "".join(e.text for e in events if isinstance(e, TextDelta))
    reasoning = "".join(e.text for e in events if isinstance(e, ThinkingDelta))
    return answer, reasoning


# --- P1: the thinking stage opens with START and closes with END ---


def thinking_answer(end_status: str | None) -> list[Frame]:
    frames = [
        *preamble(),
        stage("0", "STAGE_STATUS_START"),
        block("think", "1", "", op="set"),
        block("think", "1", "The user greets me; "),
        block("think", "1", "a short reply will do."),
    ]
    if end_status is not None:
        frames.append(stage("0", end_status))
    return [
        *frames,
        block("text", "2", "", op="set"),
        block("text", "2", "Hello "),
        block("text", "2", "there."),
        *completed(),
    ]


@pytest.mark.parametrize(
    "end_status",
    [
        "STAGE_STATUS_END",
        "STAGE_STATUS_DONE",
        "STAGE_STATUS_FINISH",
        "STAGE_STATUS_FINISHED",
        "STAGE_STATUS_COMPLETE",
        "STAGE_STATUS_COMPLETED",
        "STAGE_STATUS_CANCEL",
        "STAGE_STATUS_CANCELLED",
        "STAGE_STATUS_CANCELED",
        "STAGE_STATUS_FAIL",
        "STAGE_STATUS_FAILED",
    ],
)
def test_start_think_end_text_puts_the_answer_in_content(end_status: str) -> None:
    events = run(thinking_answer(end_status))
    assert split(events) == ("Hello there.", "The user greets me; a short reply will do.")
    assert events[-1] == Finished("stop")
    assert drift.counts() == {}


def test_a_missed_end_status_does_not_swallow_the_answer() -> None:
    # Routing is by block: block.think is reasoning, block.text the answer, whatever the stage flag says.
    assert split(run(thinking_answer(None))) == ("Hello there.", "The user greets me; a short reply will do.")


def test_an_unknown_stage_status_is_noted_and_does_not_hide_the_answer() -> None:
    frames = [*preamble(), stage("0", "STAGE_STATUS_WEIRD"), block("text", "1", "Answer", op="set"), *completed()]
    assert split(run(frames)) == ("Answer", "")
    assert drift.counts() == {"stage status": 1}


def test_text_parented_by_the_thinking_stage_is_reasoning() -> None:
    frames = [
        *preamble(),
        stage("0", "STAGE_STATUS_START"),
        block("text", "1", "inner thought", op="set", parent="0"),
        stage("0", "STAGE_STATUS_END"),
        block("text", "1", " continued"),  # a later append of the same block stays reasoning
        block("text", "2", "Answer", op="set"),
        *completed(),
    ]
    assert split(run(frames)) == ("Answer", "inner thought continued")


def test_text_flagged_thinking_is_reasoning_without_any_stage() -> None:
    flagged = {"op": "set", "mask": "block.text", "block": {"id": "1", "text": {"content": "hm", "flags": "thinking"}}}
    answer = {"op": "set", "mask": "block.text", "block": {"id": "2", "text": {"content": "A", "flags": "answer"}}}
    assert split(run([*preamble(), flagged, answer, *completed()])) == ("A", "hm")


# --- P2: block.exception ---


@pytest.mark.parametrize("snake", [False, True])
def test_overload_before_any_output_is_retryable(snake: bool) -> None:
    frames = [*preamble(), exception("REASON_COMPLETION_OVERLOADED", "The model is overloaded", snake)]
    with pytest.raises(UpstreamUnavailable) as caught:
        run(frames)
    assert caught.value.status == 503 and caught.value.retryable
    assert caught.value.retry_after == 1.0
    assert "The model is overloaded" in caught.value.message
    assert drift.counts() == {}


def test_overload_after_output_keeps_the_output_and_raises_instead_of_stopping() -> None:
    translator = FrameTranslator(cumulative=False, strip_markers=True)
    out: list[ChatEvent] = []
    for frame in [*preamble(), block("text", "1", "", op="set"), block("text", "1", "Part of it")]:
        translator.translate(frame, out)
    with pytest.raises(UpstreamUnavailable):
        translator.translate(exception("REASON_COMPLETION_OVERLOADED", "busy"), out)
    assert out == [TextDelta("Part of it")]
    assert not translator.finished


def test_another_reason_is_an_upstream_error_with_kimis_message_and_is_noted() -> None:
    with pytest.raises(GatewayError) as caught:
        run([*preamble(), exception("REASON_SOMETHING_NEW", "Generation failed")])
    assert type(caught.value) is UpstreamError and caught.value.status == 502
    assert "Generation failed" in caught.value.message
    assert drift.counts() == {"block.exception": 1}
    [record] = drift.records()
    assert "Generation failed" not in record.shape and "REASON_SOMETHING_NEW" in record.shape


# --- P4: citation markers in searched answers ---


def searched(*pieces: str) -> list[Frame]:
    chunks = [
        {
            "searchResult": {
                "refIndex": n,
                "base": {"title": f"T{n}", "url": f"https://site{n}.example/", "siteName": "S"},
            }
        }
        for n in (1, 2, 3)
    ]
    refs = {
        "op": "set",
        "mask": "message.refs.searchChunks",
        "message": {"id": ASSISTANT_ID, "refs": {"searchChunks": chunks}},
    }
    texts = [block("text", "1", pieces[0], op="set"), *(block("text", "1", piece) for piece in pieces[1:])]
    return [*preamble(), refs, *texts, *completed()]


def test_a_marker_with_several_refs_is_removed_whole() -> None:
    events = run(searched("Paris is the capital.\ue3a0cite\ue3a3web_search:1#2\ue3a3web_search:1#3\ue3a8 It is old."))
    assert split(events)[0] == "Paris is the capital. It is old."


def test_a_marker_split_across_frames_is_held_back_and_never_shown() -> None:
    events = run(searched("Rome.", "\ue3a0ci", "te\ue3a3web_sea", "rch:1#1\ue3a8", " Next."))
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert "".join(deltas) == "Rome. Next."
    assert not any("web_search" in delta or "cite" in delta for delta in deltas)


def test_markers_render_as_footnotes_when_asked() -> None:
    events = run(searched("Fact.\ue3a0cite\ue3a3web_search:1#2\ue3a8 More 🛠web_search:1#3🛠."), footnotes=True)
    assert [e.url for e in events if isinstance(e, SearchResult)][1:] == [
        "https://site2.example/",
        "https://site3.example/",
    ]
    assert split(events)[0] == "Fact.[2] More [3]."


# --- P6: a research run that parks on a question ---


def research_question(args_pieces: list[str], status_frame: Frame) -> list[Frame]:
    tool = {
        "id": "5",
        "parentId": ASSISTANT_ID,
        "tool": {"toolCallId": "call-1", "name": "ask_user", "status": "TOOL_STATUS_RUNNING"},
    }
    frames = [
        *preamble(),
        block("text", "1", "I will research this.", op="set"),
        {"op": "set", "mask": "block.tool", "block": tool},
    ]
    frames += [
        {"op": "append", "mask": "block.tool.args", "block": {"id": "5", "tool": {"args": piece}}}
        for piece in args_pieces
    ]
    return [*frames, status_frame]


CHAT_PARKED: Frame = {"op": "set", "mask": "chat.status", "chat": {"id": CHAT_ID, "status": "STATUS_ASK_USER_QUESTION"}}


def test_a_parked_research_run_ends_with_its_question() -> None:
    args = orjson.dumps(
        {
            "questions": [
                {
                    "question": "Which region matters most?",
                    "type": "single",
                    "options": [
                        {"option": "Europe", "description": "EU markets", "recommended": True},
                        {"option": "Asia"},
                    ],
                }
            ]
        }
    ).decode()
    translator = FrameTranslator(cumulative=False, strip_markers=True)
    out: list[ChatEvent] = []
    for frame in research_question([args[:10], args[10:37], args[37:]], CHAT_PARKED):
        translator.translate(frame, out)
    assert out[-1] == Finished("stop")
    assert split(out)[0] == (
        "I will research this.\n\nWhich region matters most?\n- Europe: EU markets (recommended)\n- Asia"
    )
    assert translator.parked and translator.finished and translator.chat_id == CHAT_ID


def test_a_question_status_on_the_message_also_parks_and_a_later_done_adds_nothing() -> None:
    parked = {
        "op": "set",
        "mask": "message.status",
        "message": {"id": ASSISTANT_ID, "status": "STATUS_ASK_USER_QUESTION"},
    }
    events = run([*research_question(['{"question": "Which year?"}'], parked), {"done": {}}])
    assert split(events)[0] == "I will research this.\n\nWhich year?"
    assert events.count(Finished("stop")) == 1


# --- P10 and drift: nothing unknown passes silently ---


def test_an_answer_with_no_content_is_a_502_saying_the_format_changed() -> None:
    frames = [
        *preamble(),
        {"op": "set", "mask": "block.novelty", "block": {"id": "1", "novelty": {"body": "secret words"}}},
    ]
    with pytest.raises(AnswerFormatChanged) as caught:
        run([*frames, *completed()])
    assert caught.value.status == 502 and "format seems to have changed" in caught.value.message
    counts = drift.counts()
    assert counts["block"] == 1 and counts["mask"] == 1 and counts["empty answer"] == 1
    assert not any("secret" in record.shape for record in drift.records())


def test_unknown_frames_and_statuses_are_noted_once_per_shape_but_counted_each_time() -> None:
    odd_status = {
        "op": "set",
        "mask": "message.status",
        "message": {"id": ASSISTANT_ID, "status": "MESSAGE_STATUS_PONDERING"},
    }
    odd_frame = {"op": "set", "surprise": {"kind": "new"}}
    events = run([*preamble(), odd_status, odd_frame, odd_frame, block("text", "1", "ok", op="set"), *completed()])
    assert split(events)[0] == "ok"
    assert drift.counts() == {"message status": 1, "frame": 2}
    assert len(drift.records()) == 2


def test_a_known_answer_notes_no_drift() -> None:
    run(searched("Plain answer."))
    run(thinking_answer("STAGE_STATUS_END"))
    assert drift.counts() == {}


def test_a_held_tail_is_shown_before_an_error_frame() -> None:
    translator = FrameTranslator(cumulative=False, strip_markers=True)
    out: list[ChatEvent] = []
    for frame in [*preamble(), block("text", "1", "We cite", op="set")]:
        translator.translate(frame, out)
    assert split(out)[0] == "We "
    with pytest.raises(UpstreamError):
        translator.translate({"error": {"code": "internal", "message": "boom"}}, out)
    assert split(out)[0] == "We cite"

"""The doctor's judges, fed the frame sequences that kimi-2026-evidence.md describes (field names and order as
captured, our own text), and the older shapes the gateway was first written against."""

from __future__ import annotations

from typing import Any

from kimi_free_api.doctor.checks import CHECKS, DIFFERS, HELD, UNTESTED, judge
from kimi_free_api.doctor.script import Observations
from kimi_free_api.doctor.wire import Reply, Stream

UUID = "4f1c2a9e-7b3d-4e21-9c55-0d8e6f7a1b2c"  # 8-4-4-4-12, as in S7 and S12
XID = "d0rk6lbmr1m5ie0q1b2g"


def _opening(chat_id: str = UUID) -> list[dict[str, Any]]:
    return [
        {"op": "set", "eventOffset": 1, "chat": {"id": chat_id, "name": "New chat", "createTime": "2026-01-01"}},
        {"op": "set", "mask": "message", "eventOffset": 2,
         "message": {"id": "m-user", "role": "user", "status": "MESSAGE_STATUS_COMPLETED", "blocks": []}},
        {"op": "set", "mask": "message", "eventOffset": 3,
         "message": {"id": "m-reply", "role": "assistant", "status": "MESSAGE_STATUS_GENERATING", "blocks": []}},
    ]  # fmt: skip


def _answer(text: str, block: str = "b1") -> list[dict[str, Any]]:
    return [
        {"op": "set", "mask": "block.text", "block": {"id": block, "parentId": "m-reply", "text": {"content": ""}}},
        {"op": "append", "mask": "block.text.content", "block": {"id": block, "text": {"content": text}}},
    ]


_CLOSING: list[dict[str, Any]] = [
    {"op": "set", "mask": "message.status", "message": {"id": "m-reply", "status": "MESSAGE_STATUS_COMPLETED"}},
    {"eventOffset": 9, "done": {}},
]


def _stage(status: str) -> dict[str, Any]:
    stages = {"stages": [{"name": "STAGE_NAME_THINKING", "status": status}]}
    return {"op": "set", "mask": "block.multiStage", "block": {"id": "b0", "multiStage": stages}}


def _stream(*parts: list[dict[str, Any]]) -> Stream:
    return Stream(200, frames=[frame for part in parts for frame in part], ends=[(0x02, {})])


def _thinking(start: str, end: str) -> Stream:
    think = [
        {"op": "set", "mask": "block.think", "block": {"id": "b1", "think": {"content": ""}}},
        {"op": "append", "mask": "block.think.content", "block": {"id": "b1", "think": {"content": "Let me see."}}},
    ]
    return _stream(_opening(), [_stage(start)], think, [_stage(end)], _answer("42", "b2"), _CLOSING)


def _observations(**changes: Any) -> Observations:
    pages = {"webPages": [{"title": "A tower", "url": "https://example.com/a", "siteName": "example"}]}
    search = [{"op": "set", "mask": "block.search.webPages", "block": {"id": "b0", "search": pages}}]
    seen = Observations(
        token_kind="refresh",
        refresh=Reply(200, {"accessToken": "a", "refreshToken": "r2"}),
        sent_refresh_token="r1",
        new_refresh_token="r2",
        access_claims={"typ": "access", "iat": 1_700_000_000, "exp": 1_700_000_900},
        catalog=Reply(200, {"availableModels": [
            {"id": "k2d6-chat", "scenario": "SCENARIO_CHAT", "reasoningEffortOptions": ["REASONING_EFFORT_NONE"]},
            {"id": "k3", "scenario": "SCENARIO_K3", "reasoningEffortOptions": ["REASONING_EFFORT_LOW"]},
        ]}),
        streams={
            "plain": _stream(_opening(), _answer("Hello there."), _CLOSING),
            "thinking": _thinking("STAGE_STATUS_START", "STAGE_STATUS_END"),
            # S8's marker grammar: U+E3A0 cite U+E3A3 refs U+E3A8, several refs in one marker.
            "search": _stream(_opening(), search, _answer("Tall.\ue3a0cite\ue3a3web_search:1#2\ue3a8"), _CLOSING),
            "upload": _stream(_opening(), _answer("It says hello."), _CLOSING),
            "cancel": _stream(_opening(), _answer("Tea"), _CLOSING),
        },
        upload=Reply(200, {"file": {"id": "f1", "meta": {"name": "doctor.txt"}}}),
        parse_statuses=["PROCESS_STATUS_PROCESSING", "PROCESS_STATUS_SUCCESS"],
        cancel=Reply(200, {}),
        cancel_sent=True,
        cancel_to_end_s=0.2,
        deletes=[Reply(200, {})] * 5,
    )  # fmt: skip
    for name, value in changes.items():
        setattr(seen, name, value)
    return seen


def _verdicts(seen: Observations) -> dict[str, tuple[str, str]]:
    return {item.name: (verdict.result, verdict.observed) for item, verdict in judge(seen)}


def test_the_2026_evidence_holds_everywhere_it_can_be_observed() -> None:
    verdicts = _verdicts(_observations())
    assert {name for name, (result, _) in verdicts.items() if result != HELD} == {
        "refresh.legacy",  # only tried when the 2026 refresh fails
        "stream.exception",  # no overload happened
    }
    assert all(result == UNTESTED for name, (result, _) in verdicts.items() if result != HELD)


def test_every_check_names_its_evidence_row() -> None:
    assert len({item.name for item in CHECKS}) == len(CHECKS)
    assert {item.row for item in CHECKS if item.row} >= {3, 4, 5, 7, 20, 21, 22, 26, 28, 35, 38, 40, 41, 42, 44}


def test_the_older_shapes_are_named() -> None:
    seen = _observations(new_refresh_token="r1")
    seen.streams["plain"] = _stream(_opening(XID), _answer("Hello."), _CLOSING)
    seen.streams["thinking"] = _thinking("STAGE_STATUS_RUNNING", "STAGE_STATUS_COMPLETED")
    seen.streams["search"] = _stream(_opening(), [], _answer("Tall.\ue001"), _CLOSING)
    seen.catalog = Reply(
        200, {"availableModels": [{"scenario": "SCENARIO_K2D5", "displayName": "K2", "thinking": True}]}
    )
    verdicts = _verdicts(seen)
    differing = {name: observed for name, (result, observed) in verdicts.items() if result == DIFFERS}
    assert differing == {
        "refresh.rotation": "the same refresh token came back",
        "chat.id_format": "a 20-character id of [0-9a-z]",
        "thinking.stage": "STAGE_STATUS_RUNNING then STAGE_STATUS_COMPLETED",
        "search.results": "frames ['chat', 'message', 'block.text', 'block.text.content', 'message.status']",
        "search.markers": "lone private-use characters U+E001",
        "catalog.entries": "entry keys ['displayName', 'scenario', 'thinking']",
    }


def test_an_overload_inside_the_answer_is_recognised() -> None:
    # S14: mask block.exception, error.reason, localizedMessage {locale, message}, severity.
    error = {
        "reason": "REASON_COMPLETION_OVERLOADED",
        "localizedMessage": {"locale": "en-US", "message": "Too busy right now."},
        "severity": "SEVERITY_BLOCK_RETRACT",
    }
    exception = [{"op": "set", "mask": "block.exception", "block": {"id": "b1", "exception": {"error": error}}}]
    seen = _observations()
    seen.streams["plain"] = _stream(_opening(), exception, _CLOSING)
    verdicts = _verdicts(seen)
    assert verdicts["stream.exception"] == (HELD, "REASON_COMPLETION_OVERLOADED")
    assert verdicts["chat.frames"][0] == HELD
    assert verdicts["chat.text"][0] == DIFFERS


def test_unknown_frames_and_unreadable_envelopes_are_drift() -> None:
    seen = _observations()
    widget = {"op": "set", "mask": "block.widget", "block": {"id": "b9", "widget": {}}, "sparkle": {}}
    seen.streams["plain"] = _stream(_opening(), [widget], _answer("Hi"), _CLOSING)
    seen.streams["plain"].not_json = 2
    verdicts = _verdicts(seen)
    assert verdicts["chat.frames"] == (DIFFERS, "unknown key sparkle, mask block.widget")
    assert verdicts["chat.json"] == (DIFFERS, "2 envelopes were empty or not JSON")


def test_a_refused_token_is_untested_not_drift() -> None:
    seen = Observations(
        token_kind="refresh",
        refresh=Reply(401, {"code": "unauthenticated"}),
        legacy_refresh=Reply(401, {"error_type": "auth.token.invalid"}),
        fatal="the token was not accepted",
    )
    assert {result for result, _ in _verdicts(seen).values()} == {UNTESTED}


def test_a_moved_endpoint_is_drift_with_its_status() -> None:
    seen = _observations(refresh=Reply(404, None), legacy_refresh=Reply(200, {"access_token": "a"}))
    verdicts = _verdicts(seen)
    assert verdicts["refresh.connect"] == (DIFFERS, "RefreshToken answered HTTP 404, a body that is not JSON")
    assert verdicts["refresh.legacy"] == (HELD, "")


def test_an_access_token_brought_along_is_not_judged_by_its_lifetime() -> None:
    month = {"typ": "access", "iat": 1_700_000_000, "exp": 1_702_592_000}
    seen = _observations(token_kind="access", refresh=None, access_claims=month)
    verdicts = _verdicts(seen)
    assert verdicts["token.access"][0] == HELD
    assert verdicts["refresh.connect"][0] == verdicts["refresh.rotation"][0] == UNTESTED
    exchanged = _verdicts(_observations(access_claims=month))
    assert exchanged["token.access"] == (DIFFERS, "typ=access, lifetime 2592000 s")

"""Chat ids in both shapes Kimi has minted: UUID-style since late 2025, 20-character xid before."""

from __future__ import annotations

import time

import pytest

from kimi_free_api.core.conversation.chat_ids import asks_new_chat, chat_id_in

# Shaped like the captured 2026 ids (8-4-4-4-12 hex, a millisecond timestamp up front); the digits are made up.
UUID_ID = "19c2a4f0-3b1d-7e52-8a90-5f61c2d3e4b7"
XID_ID = "cu93bmos8jdiak73ck1g"


@pytest.mark.parametrize(
    ("given", "found"),
    [
        (UUID_ID, UUID_ID),
        (UUID_ID.upper(), UUID_ID.upper()),
        (f"conv-{UUID_ID}", UUID_ID),
        (f"chat {UUID_ID}.", UUID_ID),
        (XID_ID, XID_ID),
        (f"conv_{XID_ID}", XID_ID),
        ("hello", ""),
        ("", ""),
        (None, ""),
        ("none", ""),
        # The captured id has no 20-character alphanumeric run: the old pattern found nothing in it.
        (UUID_ID.replace("-", "_"), ""),
        ("x" * 21, ""),  # part of a longer word, not an id
        (UUID_ID[:-1], ""),
    ],
)
def test_chat_id_in(given: str | None, found: str) -> None:
    assert chat_id_in(given) == found


@pytest.mark.parametrize(("given", "new"), [("none", True), ("None", True), ("", True), ("hello", False)])
def test_asks_new_chat(given: str, new: bool) -> None:
    assert asks_new_chat(given) is new


def test_a_long_conversation_id_is_searched_in_linear_time() -> None:
    started = time.perf_counter()
    assert chat_id_in("0123456789abcdef-" * 20_000) == ""
    assert time.perf_counter() - started < 0.5
